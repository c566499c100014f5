import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countsPerClass, partitionIndices, PartitionError, type PartitionSpec } from '../lib/distributed/partition';
import { seededRandom } from '../lib/random';

/** 10 classes of unequal sizes (100 + 20 c images), in a seeded random order. */
const CLASSES = 10;
const labels = (() => {
  const list = Array.from({ length: CLASSES }, (_, c) => new Array<number>(100 + 20 * c).fill(c)).flat();
  const random = seededRandom(7);
  return Int32Array.from(list.map((label) => ({ label, key: random() })).sort((a, b) => a.key - b.key), (x) => x.label);
})();
const classTotals = Array.from({ length: CLASSES }, (_, c) => labels.filter((l) => l === c).length);
const spec = (strategy: PartitionSpec['strategy'], extra: Partial<PartitionSpec> = {}): PartitionSpec => ({ strategy, alpha: 0.5, seed: 0, ...extra });

/** Every image in exactly one partition, and the per-class counts add up to the dataset's. */
function assertCovers(partitions: Int32Array[]): void {
  const seen = new Uint8Array(labels.length);
  for (const indices of partitions) for (const image of indices) seen[image]!++;
  assert.ok(seen.every((n) => n === 1), 'every image in exactly one partition');
  const perClass = countsPerClass(labels, CLASSES, partitions);
  assert.deepEqual(classTotals, perClass.reduce((sum, counts) => sum.map((s, c) => s + counts[c]!)));
  partitions.forEach((indices, p) => assert.equal(perClass[p]!.reduce((a, b) => a + b), indices.length));
}

describe('partitionIndices', () => {
  it('iid: balanced sizes (differing by at most one), every class in every partition, shuffled by the seed', () => {
    const partitions = partitionIndices(labels, CLASSES, 7, spec('iid'));
    assertCovers(partitions);
    const sizes = partitions.map((p) => p.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${sizes}`);
    for (const counts of countsPerClass(labels, CLASSES, partitions)) {
      counts.forEach((n, c) => assert.ok(Math.abs(n - classTotals[c]! / 7) < classTotals[c]! / 7 / 2, `class ${c}: ${n} of ${classTotals[c]}`));
    }
    assert.notDeepEqual(partitionIndices(labels, CLASSES, 7, spec('iid', { seed: 1 })), partitions);
  });

  it('by-class: each class whole in one partition, sizes as even as whole classes allow', () => {
    const partitions = partitionIndices(labels, CLASSES, 3, spec('by-class'));
    assertCovers(partitions);
    const perClass = countsPerClass(labels, CLASSES, partitions);
    for (let c = 0; c < CLASSES; c++) assert.equal(perClass.filter((counts) => counts[c]! > 0).length, 1, `class ${c} in one partition`);
    // 2,900 images in classes of 100..280: largest-first greedy gets within one class of the even 967.
    const sizes = partitions.map((p) => p.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 100, `sizes ${sizes}`);
    assert.throws(() => partitionIndices(labels, CLASSES, 11, spec('by-class')), (err: Error) => err instanceof PartitionError && err.message.startsWith('numPartitions'));
  });

  it('dirichlet: reproducible for a seed, different for another, skewed for small alpha, no partition empty', () => {
    const partitions = partitionIndices(labels, CLASSES, 5, spec('dirichlet', { alpha: 0.3, seed: 3 }));
    assertCovers(partitions);
    assert.deepEqual(partitionIndices(labels, CLASSES, 5, spec('dirichlet', { alpha: 0.3, seed: 3 })), partitions);
    assert.notDeepEqual(partitionIndices(labels, CLASSES, 5, spec('dirichlet', { alpha: 0.3, seed: 4 })), partitions);
    // Share of a partition's images in its most common class: small alpha concentrates classes, large alpha mixes them.
    const dominance = (alpha: number) => {
      const perClass = countsPerClass(labels, CLASSES, partitionIndices(labels, CLASSES, 5, spec('dirichlet', { alpha, seed: 3 })));
      return perClass.reduce((sum, counts) => sum + Math.max(...counts) / counts.reduce((a, b) => a + b), 0) / perClass.length;
    };
    assert.ok(dominance(0.1) > 0.4, `alpha 0.1: ${dominance(0.1)}`);
    assert.ok(dominance(1000) < 0.15, `alpha 1000: ${dominance(1000)}`);
    // Tiny alpha puts each class in about one partition: the empty ones still get an image.
    const extreme = partitionIndices(labels, CLASSES, 40, spec('dirichlet', { alpha: 0.001 }));
    assertCovers(extreme);
    assert.ok(extreme.every((p) => p.length > 0));
  });

  it('refuses more partitions than images, and a non-positive alpha', () => {
    assert.throws(() => partitionIndices(labels, CLASSES, labels.length + 1, spec('iid')), /numPartitions/);
    assert.throws(() => partitionIndices(labels, CLASSES, 0, spec('iid')), /numPartitions/);
    assert.throws(() => partitionIndices(labels, CLASSES, 2, spec('dirichlet', { alpha: 0 })), /alpha/);
    assert.equal(partitionIndices(labels, CLASSES, labels.length, spec('iid')).every((p) => p.length === 1), true);
  });
});
