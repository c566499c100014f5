import type { LayersModel, Scalar, Tensor } from '@tensorflow/tfjs';
import type { ArtifactStore } from '../artifacts';
import { cached } from '../child-cache';
import type { DatasetManifest } from '../datasets/manifest';
import { ShardRowReader } from '../datasets/shard-rows';
import { loadSplit, loadSplitLabels, splitContentKey, type SplitTensors } from '../datasets/shards';
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

/** The whole split as tensors, kept by a warm process for its next jobs. */
async function memoryFeed(tf: TensorFlow, store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<SplitFeed> {
  const tensors = await cached<SplitTensors>(`tensors ${manifest.classes.length} classes ${splitContentKey(manifest, split)}`, async () => {
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
  const readBatch = async (batch: Int32Array): Promise<Tensor> => tf.tensor(await reader.read(batch), [batch.length, ...manifest.shape]);
  return {
    loading: 'stream',
    count: reader.count,
    labels: oneHot,
    batches: (rows) => prefetched(rows, readBatch, PREFETCH_BATCHES, (t) => t.dispose()),
    async close() {
      oneHot.dispose();
      await reader.close();
    },
  };
}

/**
 * Yields `prepare(item)` for each item in order, with up to `ahead` more being prepared meanwhile. Stopped early, it
 * waits for those and `discard`s them, so nothing is left reading.
 */
export async function* prefetched<I, T>(items: Iterable<I>, prepare: (item: I) => Promise<T>, ahead: number, discard: (value: T) => void): AsyncGenerator<T> {
  const iterator = items[Symbol.iterator]();
  const pending: Promise<T>[] = [];
  const fill = () => {
    while (pending.length <= ahead) {
      const next = iterator.next();
      if (next.done) return;
      const prepared = prepare(next.value);
      // Failures surface when the batch is taken; until then they must not count as unhandled.
      prepared.catch(() => undefined);
      pending.push(prepared);
    }
  };
  try {
    for (fill(); pending.length > 0; fill()) yield await pending.shift()!;
  } finally {
    for (const left of await Promise.allSettled(pending)) if (left.status === 'fulfilled') discard(left.value);
  }
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
 * How a job feeds its data: as asked, or under `auto` from memory unless a memory budget is set and cannot hold the
 * in-memory splits on top of what the process already uses (TensorFlow and the model loaded).
 */
export function chooseLoading(requested: 'auto' | DataLoading, budgetBytes: number | null, baselineBytes: number, inMemoryPeakBytes: number): DataLoading {
  if (requested !== 'auto') return requested;
  return budgetBytes !== null && baselineBytes + inMemoryPeakBytes > budgetBytes ? 'stream' : 'memory';
}
