import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { partitionDataset, type PartitionDatasetInput } from '../activities/distributed';
import { artifactStore } from '../lib/artifacts';
import { readManifest } from '../lib/datasets/manifest';
import { readShard, readShardPixels } from '../lib/datasets/shards';
import { partitionCacheEntry } from '../lib/distributed/partition-dataset';
import { preprocessDigits } from './helpers/digits';
import { temporaryDataDir } from './helpers/temporal';

describe('partitionDataset (real preprocessed digits, real artifact store)', () => {
  let manifestUri: string;
  const run = (input: Omit<PartitionDatasetInput, 'manifestUri'>) =>
    new MockActivityEnvironment().run(partitionDataset, { manifestUri, ...input }) as ReturnType<typeof partitionDataset>;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    manifestUri = await preprocessDigits(1500);
  });

  /** Labels and per-image pixel sums of a manifest's train split, read shard by shard. */
  async function trainRows(uri: string) {
    const store = artifactStore();
    const manifest = await readManifest(store, uri);
    const [h, w, c] = manifest.shape;
    const rows: string[] = [];
    for (const shard of manifest.shards.filter((s) => s.split === 'train')) {
      const images = (await readShardPixels(store, manifest, shard)).data;
      const labels = (await readShard(store, shard.labelsUri, 'int32', [shard.count])).data;
      for (let i = 0; i < shard.count; i++) rows.push(`${labels[i]}:${images.subarray(i * h * w * c, (i + 1) * h * w * c).join(',')}`);
    }
    return { manifest, rows };
  }

  it('writes one valid manifest per partition: together they hold exactly the source training images, per class as reported', async () => {
    const result = await run({ numPartitions: 3, partition: { strategy: 'dirichlet', alpha: 0.5, seed: 1 } });
    const source = await trainRows(manifestUri);
    assert.equal(result.partitions.length, 3);
    assert.deepEqual(result.classes, source.manifest.classes);
    const all: string[] = [];
    for (const partition of result.partitions) {
      const { manifest, rows } = await trainRows(partition.manifestUri);
      assert.equal(manifest.counts.train, partition.count);
      assert.equal(rows.length, partition.count);
      assert.ok(partition.count > 0);
      const perClass = source.manifest.classes.map((_, k) => rows.filter((row) => row.startsWith(`${k}:`)).length);
      assert.deepEqual(perClass, partition.perClass);
      assert.deepEqual(manifest.countsPerClass.train, partition.perClass);
      assert.deepEqual(manifest.shards.filter((s) => s.split !== 'train'), source.manifest.shards.filter((s) => s.split !== 'train'));
      all.push(...rows);
    }
    assert.deepEqual(all.sort(), source.rows.sort());
    const report = await artifactStore().readJson<{ partitions: { index: number; count: number; perClass: number[] }[] }>(result.reportUri);
    assert.deepEqual(report.partitions, result.partitions.map(({ index, count, perClass }) => ({ index, count, perClass })));
  });

  it('is stable for a seed: the same input gives the same manifests, another seed others', async () => {
    const input = { numPartitions: 2, partition: { strategy: 'iid' as const, alpha: 0.5, seed: 5 } };
    const { cacheHit, ...first } = await run(input);
    const { cacheHit: again, ...second } = await run(input);
    assert.deepEqual(second, first);
    assert.deepEqual([cacheHit, again], [false, true]);
    const other = await run({ ...input, partition: { ...input.partition, seed: 6 } });
    assert.notDeepEqual(other.partitions.map((p) => p.manifestUri), first.partitions.map((p) => p.manifestUri));
    const sizes = first.partitions.map((p) => p.count);
    assert.ok(Math.abs(sizes[0]! - sizes[1]!) <= 1);
  });

  it('partitions once per input: a repeat returns the recorded partitions, and a damaged shard is written again', async () => {
    const store = artifactStore();
    const input = { numPartitions: 3, partition: { strategy: 'by-class' as const, alpha: 0.5, seed: 11 } };
    const first = await run(input);
    const repeat = await run(input);
    assert.deepEqual([first.cacheHit, repeat.cacheHit], [false, true]);
    assert.deepEqual({ ...repeat, cacheHit: false }, first);

    const { manifest } = await trainRows(first.partitions[1]!.manifestUri);
    const shard = manifest.shards.find((s) => s.split === 'train')!;
    const path = await store.localPath(shard.imagesUri);
    chmodSync(path, 0o644);
    writeFileSync(path, 'damaged');
    assert.equal(await store.isIntactBlob(shard.imagesUri), false);
    const repaired = await run(input);
    assert.equal(repaired.cacheHit, false);
    assert.deepEqual({ ...repaired, cacheHit: false }, first);
    assert.equal(await store.isIntactBlob(shard.imagesUri), true);
    assert.equal((await run(input)).cacheHit, true);

    // A record that is not one is a miss, and is written again.
    await store.putNamed(partitionCacheEntry(await readManifest(store, manifestUri), input.numPartitions, input.partition), '{}');
    assert.equal((await run(input)).cacheHit, false);
    assert.equal((await run(input)).cacheHit, true);
  });

  it('refuses more partitions than training images, naming numPartitions, without retries', async () => {
    const { manifest } = await trainRows(manifestUri);
    await assert.rejects(run({ numPartitions: manifest.counts.train + 1, partition: { strategy: 'iid', alpha: 0.5, seed: 0 } }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'InvalidInput');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /^numPartitions: /);
      return true;
    });
  });
});
