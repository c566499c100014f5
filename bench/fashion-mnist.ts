import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { artifactStore } from '../lib/artifacts';
import { readIdx } from '../lib/datasets/idx';
import type { DatasetManifest, ShardRef } from '../lib/datasets/manifest';
import { encodeNpy, type NpyArray } from '../lib/npy';
import type { ShardStorage } from '../lib/preprocessing/normalize';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';
import { splitOf, type Split } from '../lib/split';

const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const SHARD = 10_000;
const PIXELS = 28 * 28;

/**
 * Writes Fashion-MNIST as shards and a manifest: the official 10,000 test images, 10% of the training images held out
 * by content hash. `limits` keeps only the first images of a split, in file order, for a quicker benchmark; `storage`
 * stores pixels as normalized float32 (the default here) or as uint8, normalized when fed (preprocessDataset's default).
 */
export async function fashionMnistManifest(dir: string, { limits = {}, storage = 'float32' }: { limits?: Partial<Record<Split, number>>; storage?: ShardStorage } = {}): Promise<string> {
  const store = artifactStore();
  const read = (name: string) => readIdx(readFileSync(join(dir, name)));
  const splits: Record<Split, { pixels: number[]; labels: number[] }> = { train: { pixels: [], labels: [] }, validation: { pixels: [], labels: [] }, test: { pixels: [], labels: [] } };
  const assign = (images: ReturnType<typeof read>, labels: ReturnType<typeof read>, split: (image: Uint8Array) => Split) => {
    for (let i = 0; i < labels.data.length; i++) {
      const image = images.data.subarray(i * PIXELS, (i + 1) * PIXELS);
      const target = splits[split(image)];
      for (const v of image) target.pixels.push(v);
      target.labels.push(labels.data[i]!);
    }
  };
  assign(read('train-images-idx3-ubyte.gz'), read('train-labels-idx1-ubyte.gz'), (image) => splitOf(createHash('sha256').update(image).digest('hex'), 0.1, 0));
  assign(read('t10k-images-idx3-ubyte.gz'), read('t10k-labels-idx1-ubyte.gz'), () => 'test');

  const shards: ShardRef[] = [];
  const counts = { train: 0, validation: 0, test: 0 };
  const countsPerClass = { train: new Array(10).fill(0), validation: new Array(10).fill(0), test: new Array(10).fill(0) };
  for (const split of ['train', 'validation', 'test'] as const) {
    const labels = splits[split].labels.slice(0, limits[split]);
    const pixels = splits[split].pixels.slice(0, labels.length * PIXELS);
    counts[split] = labels.length;
    labels.forEach((l) => countsPerClass[split][l]++);
    for (let start = 0; start < labels.length; start += SHARD) {
      const count = Math.min(SHARD, labels.length - start);
      const values = pixels.slice(start * PIXELS, (start + count) * PIXELS);
      const shape = [count, 28, 28, 1];
      const images: NpyArray = storage === 'uint8' ? { dtype: 'uint8', shape, data: Uint8Array.from(values) } : { dtype: 'float32', shape, data: Float32Array.from(values, (v) => v / 255) };
      const imagesUri = (await store.putBlob(encodeNpy(images), '.npy')).uri;
      const labelsUri = (await store.putBlob(encodeNpy({ dtype: 'int32', shape: [count], data: Int32Array.from(labels.slice(start, start + count)) }), '.npy')).uri;
      shards.push({ split, imagesUri, labelsUri, count });
    }
  }
  const manifest: DatasetManifest = {
    version: 2,
    source: `idx:${dir}`,
    classes: CLASSES,
    shape: [28, 28, 1],
    dtype: storage,
    spec: preprocessSpecSchema.parse({ validationFraction: 0.1, testFraction: 10_000 / 70_000, storage }),
    counts,
    countsPerClass,
    images: { listed: counts.train + counts.validation + counts.test, kept: counts.train + counts.validation + counts.test, leftOut: 0, augmentedCopies: 0 },
    shards,
    imagesIndexUri: (await store.putBlob(Buffer.from('[]'), '.json')).uri,
    leftOut: [],
    leftOutByReason: {},
    fingerprint: createHash('sha256').update(shards.map((s) => s.imagesUri).join()).digest('hex'),
  };
  return (await store.putBlob(Buffer.from(JSON.stringify(manifest, null, 2)), '.json')).uri;
}
