import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededPermutation } from '../lib/random';
import { batchesOf, epochOrder } from '../lib/training/batch-order';

const shards = [100, 37, 100, 64, 5, 100];
const total = shards.reduce((a, b) => a + b, 0);
const shardOf = (row: number) => {
  let first = 0;
  for (let s = 0; s < shards.length; s++) {
    if (row < first + shards[s]!) return s;
    first += shards[s]!;
  }
  throw new RangeError(String(row));
};

describe('epoch batch order', () => {
  it('shuffling the whole split is the seeded permutation training always drew', () => {
    for (const epoch of [0, 3]) {
      assert.deepEqual(epochOrder(shards, null, 42, epoch), seededPermutation(total, 42 * 1000 + epoch));
      assert.deepEqual(epochOrder(shards, total, 42, epoch), seededPermutation(total, 42 * 1000 + epoch));
    }
  });

  it('visits every row once per epoch, the same way for the same seed and epoch, differently otherwise', () => {
    for (const window of [null, 1, 120, 250]) {
      const order = epochOrder(shards, window, 7, 1);
      assert.deepEqual([...order].sort((a, b) => a - b), [...Array(total).keys()], `window ${window}`);
      assert.deepEqual(epochOrder(shards, window, 7, 1), order);
      assert.notDeepEqual(epochOrder(shards, window, 7, 2), order);
      assert.notDeepEqual(epochOrder(shards, window, 8, 1), order);
    }
  });

  it('keeps each window to whole consecutive shards within shuffleWindow images, a larger shard alone', () => {
    for (const window of [1, 120, 150, 250]) {
      const order = epochOrder(shards, window, 11, 0);
      // Cut the order where a window ends: where every shard begun so far has been visited completely.
      const seen = new Map<number, number>();
      let windowStart = 0;
      for (let i = 0; i < order.length; i++) {
        const shard = shardOf(order[i]!);
        seen.set(shard, (seen.get(shard) ?? 0) + 1);
        if ([...seen].every(([s, n]) => n === shards[s])) {
          const size = i + 1 - windowStart;
          assert.ok(size <= Math.max(window, ...[...seen.keys()].map((s) => shards[s]!)), `window ${window}: ${size} images from shards ${[...seen.keys()]}`);
          seen.clear();
          windowStart = i + 1;
        }
      }
      assert.equal(windowStart, total);
    }
    // Rows within a window are shuffled, not left in shard order.
    const order = epochOrder(shards, 250, 11, 0);
    assert.ok(order.some((row, i) => i > 0 && row !== order[i - 1]! + 1));
  });

  it('cuts an epoch into batches from any batch on, the last one short', () => {
    const order = Int32Array.from([...Array(10).keys()]);
    assert.deepEqual([...batchesOf(order, 4, 0, 3)].map((b) => [...b]), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    assert.deepEqual([...batchesOf(order, 4, 1, 2)].map((b) => [...b]), [[4, 5, 6, 7]]);
  });
});
