import { createHash } from 'node:crypto';
import type { ArtifactStore } from '../artifacts';
import type { DatasetManifest, ShardRef } from '../datasets/manifest';
import { readShard, readShardPixels } from '../datasets/shards';
import { encodeNpy, pickRows } from '../npy';
import { countsPerClass, partitionIndices, type PartitionSpec } from './partition';

export interface DatasetPartition {
  index: number;
  /** A dataset manifest whose train split holds this partition's images; validation and test are the source's. */
  manifestUri: string;
  count: number;
  perClass: number[];
}

export interface PartitionedDataset {
  partitions: DatasetPartition[];
  classes: string[];
  /** JSON: the spec, and images per class per partition. */
  reportUri: string;
}

/**
 * Splits a dataset's training images into partitions and writes each partition's shards (content-addressed `.npy`,
 * so a retry rewrites nothing) and manifest. One source shard is in memory at a time; `onShard` is called after each.
 */
export async function writePartitions(
  store: ArtifactStore,
  manifest: DatasetManifest,
  numPartitions: number,
  spec: PartitionSpec,
  onShard: (done: number, total: number) => void,
): Promise<PartitionedDataset> {
  const trainShards = manifest.shards.filter((s) => s.split === 'train' && s.count > 0);
  const labels = await trainLabels(store, trainShards);
  const partitions = partitionIndices(labels, manifest.classes.length, numPartitions, spec);
  const perClass = countsPerClass(labels, manifest.classes.length, partitions);
  const partitionOf = new Int32Array(labels.length);
  partitions.forEach((indices, p) => indices.forEach((image) => (partitionOf[image] = p)));

  const shardsOf = partitions.map((): ShardRef[] => []);
  let offset = 0;
  for (const [done, shard] of trainShards.entries()) {
    const rows = partitions.map((): number[] => []);
    for (let row = 0; row < shard.count; row++) rows[partitionOf[offset + row]!]!.push(row);
    const written = await writeShardSlices(store, manifest, shard, rows);
    written.forEach((ref, p) => ref && shardsOf[p]!.push(ref));
    offset += shard.count;
    onShard(done + 1, trainShards.length);
  }

  const heldOut = manifest.shards.filter((s) => s.split !== 'train');
  const written = await Promise.all(
    partitions.map(async (indices, index): Promise<DatasetPartition> => {
      const partitionManifest: DatasetManifest = {
        ...manifest,
        counts: { ...manifest.counts, train: indices.length },
        countsPerClass: { ...manifest.countsPerClass, train: perClass[index]! },
        shards: [...shardsOf[index]!, ...heldOut],
        fingerprint: fingerprintOf(manifest.fingerprint, shardsOf[index]!),
      };
      const { uri } = await store.putBlob(Buffer.from(JSON.stringify(partitionManifest, null, 1)), '.json');
      return { index, manifestUri: uri, count: indices.length, perClass: perClass[index]! };
    }),
  );
  const report = { numPartitions, partition: spec, classes: manifest.classes, partitions: written.map(({ index, count, perClass }) => ({ index, count, perClass })) };
  const { uri: reportUri } = await store.putBlob(Buffer.from(JSON.stringify(report, null, 1)), '.json');
  return { partitions: written, classes: manifest.classes, reportUri };
}

async function trainLabels(store: ArtifactStore, shards: ShardRef[]): Promise<Int32Array> {
  const labels = new Int32Array(shards.reduce((n, s) => n + s.count, 0));
  let offset = 0;
  for (const shard of shards) {
    labels.set((await readShard(store, shard.labelsUri, 'int32', [shard.count])).data as Int32Array, offset);
    offset += shard.count;
  }
  return labels;
}

/** Writes the rows of one source shard that each partition holds as that partition's shard (none where it holds none). */
async function writeShardSlices(store: ArtifactStore, manifest: DatasetManifest, shard: ShardRef, rows: number[][]): Promise<(ShardRef | undefined)[]> {
  const images = await readShardPixels(store, manifest, shard);
  const labels = (await readShard(store, shard.labelsUri, 'int32', [shard.count])).data as Int32Array;
  return Promise.all(
    rows.map(async (picked) => {
      if (picked.length === 0) return undefined;
      const [imagesRef, labelsRef] = await Promise.all([
        store.putBlob(encodeNpy(pickRows(images, picked)), '.npy'),
        store.putBlob(encodeNpy({ dtype: 'int32', shape: [picked.length], data: Int32Array.from(picked, (row) => labels[row]!) }), '.npy'),
      ]);
      return { split: 'train' as const, imagesUri: imagesRef.uri, labelsUri: labelsRef.uri, count: picked.length };
    }),
  );
}

/** The source's fingerprint and the partition's shard contents: the same partition of the same images gives the same value. */
function fingerprintOf(sourceFingerprint: string, shards: ShardRef[]): string {
  const hash = createHash('sha256').update(sourceFingerprint);
  for (const shard of shards) hash.update('\0').update(shard.imagesUri).update('\0').update(shard.labelsUri);
  return hash.digest('hex');
}
