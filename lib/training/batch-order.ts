import { seededRandom, shuffleInPlace } from '../random';

/**
 * The order in which one epoch visits the rows of a split stored as shards of `shardCounts` rows (global row indices,
 * counted through the shards in manifest order). It depends only on its arguments, never on how the rows are fed
 * (from memory or streamed from the shards) or on which worker runs or resumes the epoch.
 *
 * - `shuffleWindow` null, or at least the split's size: one seeded permutation of the whole split,
 *   `seededPermutation(count, seed * 1000 + epoch)`.
 * - Otherwise the shards are put in a seeded order, then grouped, in that order, into windows of consecutive whole
 *   shards: a window takes the next shard while its rows stay within `shuffleWindow` (a shard larger than that is a
 *   window of its own). The windows follow one another, the rows of each in a seeded order of their own. Every row
 *   comes once per epoch, and the rows a window spans are never more than one shard or `shuffleWindow`, whichever is more.
 */
export function epochOrder(shardCounts: readonly number[], shuffleWindow: number | null, seed: number, epoch: number): Int32Array {
  const count = shardCounts.reduce((n, c) => n + c, 0);
  const random = seededRandom(seed * 1000 + epoch);
  const identity = (n: number, from = 0) => Int32Array.from({ length: n }, (_, i) => from + i);
  if (shuffleWindow === null || shuffleWindow >= count) return shuffleInPlace(identity(count), random);

  const firstRow = shardCounts.map((_, s) => shardCounts.slice(0, s).reduce((n, c) => n + c, 0));
  const shardOrder = shuffleInPlace(identity(shardCounts.length), random);
  const order = new Int32Array(count);
  let filled = 0;
  for (let next = 0; next < shardOrder.length; ) {
    const windowStart = filled;
    do {
      const shard = shardOrder[next++]!;
      order.set(identity(shardCounts[shard]!, firstRow[shard]), filled);
      filled += shardCounts[shard]!;
    } while (next < shardOrder.length && filled - windowStart + shardCounts[shardOrder[next]!]! <= shuffleWindow);
    shuffleInPlace(order.subarray(windowStart, filled), random);
  }
  return order;
}

/** The rows of each batch of an epoch's `order`, from batch `first` up to (not including) `end`. */
export function* batchesOf(order: Int32Array, batchSize: number, first: number, end: number): Generator<Int32Array> {
  for (let batch = first; batch < end; batch++) yield order.subarray(batch * batchSize, Math.min((batch + 1) * batchSize, order.length));
}
