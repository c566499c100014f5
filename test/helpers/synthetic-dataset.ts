import type { ArtifactStore } from '../../lib/artifacts';
import type { DatasetManifest } from '../../lib/datasets/manifest';
import { encodeNpy } from '../../lib/npy';
import { seededRandom } from '../../lib/random';
import { preprocessSpecSchema } from '../../lib/schemas/preprocess';

/**
 * A small learnable dataset written straight to the store: class c images are bright in row band c.
 * `count` training images, a quarter as many validation images and (unless `testCount` says otherwise) test images,
 * `side` pixels square (8 unless given). `poison` puts NaN in every pixel, to make training diverge.
 */
export async function writeSyntheticDataset(
  store: ArtifactStore,
  count: number,
  options: { poison?: boolean; side?: number; testCount?: number } = {},
): Promise<string> {
  const side = options.side ?? 8;
  const classes = 4;
  const random = seededRandom(3);
  const shards = [];
  const counts = { train: 0, validation: 0, test: 0 };
  for (const [split, n] of [['train', count], ['validation', Math.ceil(count / 4)], ['test', options.testCount ?? Math.ceil(count / 4)]] as const) {
    const images = new Float32Array(n * side * side);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const label = i % classes;
      labels[i] = label;
      for (let p = 0; p < side * side; p++) {
        const row = Math.floor(p / side);
        images[i * side * side + p] = options.poison ? NaN : (Math.floor((row * classes) / side) === label ? 0.8 : 0.1) + random() * 0.2;
      }
    }
    const imagesUri = (await store.putBlob(encodeNpy({ dtype: 'float32', shape: [n, side, side, 1], data: images }), '.npy')).uri;
    const labelsUri = (await store.putBlob(encodeNpy({ dtype: 'int32', shape: [n], data: labels }), '.npy')).uri;
    shards.push({ split, imagesUri, labelsUri, count: n });
    counts[split] = n;
  }
  const spec = preprocessSpecSchema.parse({ width: side, height: side, storage: 'float32' });
  const manifest: DatasetManifest = {
    version: 2,
    source: 'synthetic',
    classes: ['0', '1', '2', '3'],
    shape: [side, side, 1],
    dtype: 'float32',
    spec,
    counts,
    countsPerClass: { train: [], validation: [], test: [] },
    images: { listed: counts.train + counts.validation + counts.test, kept: counts.train + counts.validation + counts.test, leftOut: 0, augmentedCopies: 0 },
    shards,
    imagesIndexUri: (await store.putBlob(Buffer.from('[]'), '.json')).uri,
    leftOut: [],
    leftOutByReason: {},
    fingerprint: 'synthetic',
  };
  return (await store.putBlob(Buffer.from(JSON.stringify(manifest)), '.json')).uri;
}
