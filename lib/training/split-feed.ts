import type { LayersModel, Scalar, Tensor } from '@tensorflow/tfjs';
import type { ArtifactStore } from '../artifacts';
import { cached, isCached } from '../child-cache';
import type { DatasetManifest } from '../datasets/manifest';
import { ShardRowReader } from '../datasets/shard-rows';
import { loadSplit, loadSplitLabels, shardRowBytes, splitContentKey, splitShards, type SplitTensors } from '../datasets/shards';
import type { Split } from '../split';
import type { TensorFlow } from '../tf';

export type DataLoading = 'memory' | 'stream';

/** The images of one split fed to a model batch by batch, from memory or streamed from its shards. */
export interface SplitFeed {
  loading: DataLoading;
  count: number;
  /** One-hot labels of every image: small, so in memory either way (training extensions gather from them). */
  labels: Tensor;
  /** The images of each batch of rows, in order, as tensors the caller disposes. */
  batches(rows: Iterable<Int32Array>): AsyncGenerator<Tensor>;
  close(): Promise<void>;
}

/** Batches a streamed feed prepares ahead of the one being trained on: reads overlap training steps. */
const PREFETCH_BATCHES = 2;

export function openSplitFeed(tf: TensorFlow, store: ArtifactStore, manifest: DatasetManifest, split: Split, loading: DataLoading): Promise<SplitFeed> {
  return loading === 'memory' ? memoryFeed(tf, store, manifest, split) : streamedFeed(tf, store, manifest, split);
}

/** Names a split's tensors in a warm process's cache. */
export const splitTensorsKey = (manifest: DatasetManifest, split: Split) => `tensors ${manifest.classes.length} classes ${splitContentKey(manifest, split)}`;

/** The whole split as tensors, kept by a warm process for its next jobs. */
async function memoryFeed(tf: TensorFlow, store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<SplitFeed> {
  const tensors = await cached<SplitTensors>(splitTensorsKey(manifest, split), async () => {
    const loaded = await loadSplit(tf, store, manifest, split);
    return { value: loaded, bytes: (loaded.images.size + loaded.labels.size) * 4, dispose: () => tf.dispose([loaded.images, loaded.labels]) };
  });
  return {
    loading: 'memory',
    count: tensors.count,
    labels: tensors.labels,
    async *batches(rows) {
      for (const batch of rows) yield tf.tidy(() => tf.gather(tensors.images, tf.tensor1d(batch, 'int32')));
    },
    close: async () => undefined,
  };
}

/** Rows read from the shard files as batches need them, a few batches ahead; only the labels are loaded. */
async function streamedFeed(tf: TensorFlow, store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<SplitFeed> {
  const labels = await loadSplitLabels(store, manifest, split);
  const reader = await ShardRowReader.open(store, manifest, split);
  const oneHot = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), manifest.classes.length));
  return {
    loading: 'stream',
    count: reader.count,
    labels: oneHot,
    async *batches(rows) {
      for await (const images of reader.batches(rows, PREFETCH_BATCHES)) yield tf.tensor(images, [images.length / reader.rowValues, ...manifest.shape]);
    },
    async close() {
      oneHot.dispose();
      await reader.close();
    },
  };
}

/** Streaming a training split would need more of the artifact cache than it may hold: a setting to change, not a fault to retry. */
export class StreamingCacheError extends Error {
  override name = 'StreamingCacheError';
}

/**
 * Refuses to stream the training split in one permutation (`shuffleWindow` null, or at least the split's size) from a
 * store that reads through a bounded local cache smaller than the split's shards: any batch may read any shard, so
 * every shard stays open, and cached, all epoch long; evicting them would only fetch them again and again. With a
 * smaller window, only a window's shards are needed at a time.
 */
export function checkStreamedEpochFits(store: ArtifactStore, manifest: DatasetManifest, shuffleWindow: number | null): void {
  const bound = store.localCopyBytes;
  const count = splitShards(manifest, 'train').reduce((n, shard) => n + shard.count, 0);
  if (bound === null || (shuffleWindow !== null && shuffleWindow < count)) return;
  const rowBytes = shardRowBytes(manifest);
  if (count * rowBytes <= bound) return;
  throw new StreamingCacheError(
    `streaming the training split in one permutation reads all its shards (${count} images, ${count * rowBytes} bytes) throughout every epoch, ` +
      `more than the artifact cache holds (TEMPORAL_ML_ARTIFACT_CACHE_BYTES=${bound}): set training.shuffleWindow ` +
      `(up to ${Math.floor(bound / rowBytes / 2)} images, so that two windows fit the cache as reads run ahead across a window's end) or raise TEMPORAL_ML_ARTIFACT_CACHE_BYTES`,
  );
}

/** Batches of consecutive rows covering a split of `count` rows. */
export function* sequentialBatches(count: number, batchSize: number): Generator<Int32Array> {
  for (let start = 0; start < count; start += batchSize) yield Int32Array.from({ length: Math.min(batchSize, count - start) }, (_, i) => start + i);
}

/**
 * The model's compiled loss and first metric over a whole split, scored `batchSize` images at a time: what
 * `model.evaluate` on the whole split gives (a mean weighted by batch size), up to the order of float summation.
 */
export async function scoreFeed(tf: TensorFlow, model: LayersModel, feed: SplitFeed, batchSize: number): Promise<{ loss: number; accuracy: number }> {
  let lossSum = 0;
  let accuracySum = 0;
  const rows = [...sequentialBatches(feed.count, batchSize)];
  let i = 0;
  for await (const images of feed.batches(rows)) {
    const batch = rows[i++]!;
    const labels = tf.tidy(() => tf.gather(feed.labels, tf.tensor1d(batch, 'int32')));
    const scores = model.evaluate(images, labels, { batchSize }) as Scalar[];
    const [loss, accuracy] = await Promise.all(scores.map(async (s) => (await s.data())[0]!));
    tf.dispose([images, labels, ...scores]);
    lossSum += loss! * batch.length;
    accuracySum += accuracy! * batch.length;
  }
  return { loss: lossSum / feed.count, accuracy: accuracySum / feed.count };
}

/**
 * Bytes loading splits of `images` images of `rowValues` values into memory adds at its peak, with room for a few
 * batches: measured, about four times their float32 size (the float32 arrays, the tensors made from them and what the
 * allocators keep once those are freed).
 */
export function inMemoryBytes(images: number, rowValues: number, batchSize: number): number {
  return 4 * rowValues * (4 * images + 4 * batchSize);
}

/**
 * What loading a job's splits into memory adds (`inMemoryBytes`), or nothing when this warm process already holds
 * every one of them (under `cacheKeys`): the splits of a job load the same way, all or none.
 */
export function bytesToLoad(cacheKeys: string[], images: number, rowValues: number, batchSize: number): number {
  return cacheKeys.every(isCached) ? 0 : inMemoryBytes(images, rowValues, batchSize);
}

/**
 * How a job feeds its data: as asked, or under `auto` from memory unless a memory budget is set and cannot hold what
 * loading adds (`bytesToLoad`) on top of what the process already uses (TensorFlow and the model loaded). Data a warm
 * process already holds adds nothing (its resident size already counts it): with nothing left to load, `auto` feeds
 * from memory whatever the budget.
 */
export function chooseLoading(requested: 'auto' | DataLoading, budgetBytes: number | null, baselineBytes: number, bytesToLoad: number): DataLoading {
  if (requested !== 'auto') return requested;
  if (bytesToLoad === 0) return 'memory';
  return budgetBytes !== null && baselineBytes + bytesToLoad > budgetBytes ? 'stream' : 'memory';
}
