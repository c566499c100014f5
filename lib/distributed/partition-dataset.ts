import { createHash } from 'node:crypto';
import { readJsonIfStored, type ArtifactStore } from '../artifacts';
import { canonicalJson } from '../canonical-json';
import { mapWithConcurrency } from '../concurrency';
import { readManifest, type DatasetManifest, type ShardRef } from '../datasets/manifest';
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

/** What `partitionDataset` returns: the partitions, and whether they were recorded from an earlier call. */
export type PartitionResult = PartitionedDataset & { cacheHit: boolean };

/** Bumped whenever the same input would give other partitions, so that older cache entries stop matching. */
const PARTITION_FORMAT = 1;

/** Where the partitions of a manifest (by its content) under one spec are recorded. */
export function partitionCacheEntry(manifest: DatasetManifest, numPartitions: number, spec: PartitionSpec): string {
  const key = createHash('sha256')
    .update(`partition format ${PARTITION_FORMAT}\n${canonicalJson({ numPartitions, spec })}\n`)
    .update(JSON.stringify(manifest))
    .digest('hex');
  return `cache/partitions/${key.slice(0, 2)}/${key}.json`;
}

/**
 * `writePartitions` once per input: its result is recorded under the manifest's content and the spec, and a later
 * call with the same input returns it without reading the source shards, as long as the report and every manifest and
 * shard it wrote are intact (else it partitions again, rewriting what is missing). A hit rewrites the record, so that
 * `gc` counts it, and what it references, as recently used.
 */
export async function partitionOnce(
  store: ArtifactStore,
  manifestUri: string,
  numPartitions: number,
  spec: PartitionSpec,
  onShard: (done: number, total: number) => void,
): Promise<PartitionResult> {
  const manifest = await readManifest(store, manifestUri);
  const entry = partitionCacheEntry(manifest, numPartitions, spec);
  const recorded = await readJsonIfStored<PartitionedDataset>(store, store.uriOf(entry)).catch(() => undefined);
  const hit = recorded !== undefined && (await isIntact(store, recorded).catch(() => false));
  const partitioned = hit ? recorded : await writePartitions(store, manifest, numPartitions, spec, onShard);
  await store.putNamed(entry, JSON.stringify(partitioned));
  return { ...partitioned, cacheHit: hit };
}

/** Checks of stored blobs at once: bounded, since on an object store each may download the blob. */
const INTACT_CHECKS = 8;

/** Whether the report, every partition manifest and every shard partitioning wrote for them are stored intact. */
async function isIntact(store: ArtifactStore, partitioned: PartitionedDataset): Promise<boolean> {
  const manifests = partitioned.partitions.map((p) => p.manifestUri);
  if (!(await allIntact(store, [partitioned.reportUri, ...manifests]))) return false;
  const written = await mapWithConcurrency(manifests, INTACT_CHECKS, async (uri) => (await store.readJson<DatasetManifest>(uri)).shards.filter((shard) => shard.split === 'train'));
  return allIntact(store, written.flat().flatMap((shard) => [shard.imagesUri, shard.labelsUri]));
}

async function allIntact(store: ArtifactStore, uris: string[]): Promise<boolean> {
  return (await mapWithConcurrency(uris, INTACT_CHECKS, (uri) => store.isIntactBlob(uri))).every(Boolean);
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
