import type { ArtifactStore } from '../../lib/artifacts';
import type { DatasetManifest } from '../../lib/datasets/manifest';
import { encodeNpy, npyArrayOf } from '../../lib/npy';
import { seededRandom } from '../../lib/random';
import { preprocessSpecSchema } from '../../lib/schemas/preprocess';

export interface SyntheticDatasetOptions {
  /** NaN in every pixel, to make training diverge. */
  poison?: boolean;
  /** Pixels square (default 8). */
  side?: number;
  channels?: 1 | 3;
  /** Test images (default a quarter of `count`). */
  testCount?: number;
  /** How pixels are stored (default float32; uint8 holds the same pattern times 255). */
  storage?: 'uint8' | 'float32';
  /** Images per shard (default: one shard per split). */
  shardSize?: number;
}

/**
 * A small learnable dataset written straight to the store: class c images are bright in row band c.
 * `count` training images, a quarter as many validation images and (unless `testCount` says otherwise) test images.
 */
export async function writeSyntheticDataset(store: ArtifactStore, count: number, options: SyntheticDatasetOptions = {}): Promise<string> {
  const side = options.side ?? 8;
  const channels = options.channels ?? 1;
  const storage = options.storage ?? 'float32';
  const rowValues = side * side * channels;
  const classes = 4;
  const random = seededRandom(3);
  const shards = [];
  const counts = { train: 0, validation: 0, test: 0 };
  for (const [split, n] of [['train', count], ['validation', Math.ceil(count / 4)], ['test', options.testCount ?? Math.ceil(count / 4)]] as const) {
    const shardSize = options.shardSize ?? Math.max(n, 1);
    for (let first = 0; first < n || (n === 0 && first === 0); first += shardSize) {
      const rows = Math.min(shardSize, n - first);
      const images = storage === 'uint8' ? new Uint8Array(rows * rowValues) : new Float32Array(rows * rowValues);
      const labels = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        const label = (first + r) % classes;
        labels[r] = label;
        for (let p = 0; p < side * side; p++) {
          const row = Math.floor(p / side);
          for (let c = 0; c < channels; c++) {
            const value = options.poison ? NaN : (Math.floor((row * classes) / side) === label ? 0.8 : 0.1) + random() * 0.2;
            images[r * rowValues + p * channels + c] = storage === 'uint8' ? Math.round(value * 255) : value;
          }
        }
      }
      const imagesUri = (await store.putBlob(encodeNpy(npyArrayOf(images, [rows, side, side, channels])), '.npy')).uri;
      const labelsUri = (await store.putBlob(encodeNpy({ dtype: 'int32', shape: [rows], data: labels }), '.npy')).uri;
      shards.push({ split, imagesUri, labelsUri, count: rows });
    }
    counts[split] = n;
  }
  const spec = preprocessSpecSchema.parse({ width: side, height: side, channels, storage });
  const manifest: DatasetManifest = {
    version: 2,
    source: 'synthetic',
    classes: ['0', '1', '2', '3'],
    shape: [side, side, channels],
    dtype: storage,
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
