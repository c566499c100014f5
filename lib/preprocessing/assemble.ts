import { createHash } from 'node:crypto';
import type { ArtifactStore } from '../artifacts';
import { sortByLeadingDigest } from '../digest-sort';
import type { ListingIndex } from '../datasets/listing';
import type { DatasetManifest, ShardRef } from '../datasets/manifest';
import { decodeNpy, encodeNpy, pickRows } from '../npy';
import type { PreprocessSpec } from '../schemas/preprocess';
import { SPLITS } from '../split';
import { tallyOf, type BatchOutputForManifest, type BatchShard, type IndexRow } from './batch-output';
import type { LeftOutFile } from './quarantine';

const SHA256_HEX_DIGITS = 64;

/**
 * Combines batch outputs into the dataset manifest. An image whose exact content already appeared in an earlier
 * batch is dropped here (batches drop their own duplicates), so every distinct image is in the dataset once; the few
 * shards holding such images are rewritten without them. Per image, only what the fingerprint needs is handled here
 * (each batch's content hashes, sorted): the batches, in parallel, made their index and their counts, which are
 * joined as they are and summed. `onProgress` is called as each batch output is taken in, then as each is joined.
 */
export async function assembleManifest(
  store: ArtifactStore,
  listing: ListingIndex,
  spec: PreprocessSpec,
  batchOutputs: AsyncIterable<BatchOutputForManifest>,
  onProgress: (progress: AssemblyProgress) => void = () => {},
): Promise<DatasetManifest> {
  const outputs: BatchOutputForManifest[] = [];
  for await (const output of batchOutputs) {
    outputs.push(output);
    onProgress({ batchesRead: outputs.length, batchesJoined: 0 });
  }
  const merged = mergeByHash(outputs, listing.classes);
  const firstPathOf = firstPaths(outputs, merged.firstBatchOf);
  const parts: BatchPart[] = [];
  for (const [batch, output] of outputs.entries()) {
    const dropped = merged.droppedFrom.get(batch);
    parts.push(dropped ? await withoutDuplicates(store, output, dropped, firstPathOf) : output);
    onProgress({ batchesRead: outputs.length, batchesJoined: parts.length });
  }

  const shards: ShardRef[] = [];
  const leftOut: LeftOutFile[] = [];
  const counts = { train: 0, validation: 0, test: 0 };
  const countsPerClass = Object.fromEntries(SPLITS.map((s) => [s, new Array<number>(listing.classes.length).fill(0)])) as DatasetManifest['countsPerClass'];
  const decoders: NonNullable<DatasetManifest['decoders']> = { tensorflow: 0, png: 0, sharp: 0 };
  let augmentedCopies = 0;
  for (const part of parts) {
    leftOut.push(...part.leftOut);
    for (const { split, imagesUri, labelsUri, count } of part.shards) {
      shards.push({ split, imagesUri, labelsUri, count });
      counts[split] += count;
    }
    for (const split of SPLITS) part.tally.rowsPerLabel[split].forEach((rows, label) => (countsPerClass[split][label]! += rows));
    for (const decoder of Object.keys(decoders) as (keyof typeof decoders)[]) decoders[decoder] += part.tally.decoders[decoder];
    augmentedCopies += part.tally.augmentedCopies;
  }

  const leftOutByReason: DatasetManifest['leftOutByReason'] = {};
  for (const file of leftOut) leftOutByReason[file.reason] = (leftOutByReason[file.reason] ?? 0) + 1;
  return {
    version: 2,
    source: listing.source,
    classes: listing.classes,
    shape: [spec.height, spec.width, spec.channels],
    dtype: spec.storage,
    spec,
    counts,
    countsPerClass,
    images: { listed: listing.count, kept: merged.kept, leftOut: leftOut.length, augmentedCopies },
    decoders,
    shards,
    imagesIndexUri: (await store.putBlob(joinedJsonArrays(parts.map((part) => part.indexJson)), '.json')).uri,
    leftOut,
    leftOutByReason,
    fingerprint: merged.fingerprint,
  };
}

export interface AssemblyProgress {
  batchesRead: number;
  /** Batches whose part is ready: as they are, or with their duplicates of earlier batches' images taken out. */
  batchesJoined: number;
}

/** What a batch adds to the manifest: its shards, counts, files left out, and index. */
type BatchPart = Pick<BatchOutputForManifest, 'shards' | 'tally' | 'leftOut' | 'indexJson'>;

interface MergedByHash {
  /** sha256 over the lines `<content hash> <class>` of the images kept, sorted. */
  fingerprint: string;
  kept: number;
  /** By batch, the content hashes of its images dropped as duplicates of an earlier batch's. */
  droppedFrom: Map<number, Set<string>>;
  /** For each content hash found in several batches, the first of them. */
  firstBatchOf: Map<string, number>;
}

/**
 * Every batch's images in content-hash order: the same content in several batches shows as neighbouring lines, and
 * the lines of the images kept, in this order, are what the fingerprint hashes. Linear in the images beyond the sort,
 * however many are repeated.
 */
function mergeByHash(outputs: BatchOutputForManifest[], classes: string[]): MergedByHash {
  const lines: string[] = [];
  for (const { byHash } of outputs) byHash.sha256.forEach((sha256, i) => lines.push(`${sha256} ${classes[byHash.label[i]!]}`));
  const sorted = sortByLeadingDigest(lines);
  const hashOf = (line: string) => line.slice(0, SHA256_HEX_DIGITS);
  const repeated = new Set<string>();
  for (let i = 1; i < sorted.length; i++) if (sorted[i]!.startsWith(hashOf(sorted[i - 1]!))) repeated.add(hashOf(sorted[i]!));

  const firstBatchOf = new Map<string, number>();
  const droppedFrom = new Map<number, Set<string>>();
  /** For each repeated content, the line of its first image, the one kept. */
  const keptLineOf = new Map<string, string>();
  if (repeated.size > 0) {
    outputs.forEach(({ byHash }, batch) =>
      byHash.sha256.forEach((sha256, i) => {
        if (!repeated.has(sha256)) return;
        if (firstBatchOf.has(sha256)) droppedFrom.set(batch, (droppedFrom.get(batch) ?? new Set()).add(sha256));
        else {
          firstBatchOf.set(sha256, batch);
          keptLineOf.set(sha256, `${sha256} ${classes[byHash.label[i]!]}`);
        }
      }),
    );
  }
  // Each run of lines sharing a hash becomes the line of its first image: still in order, as they share its hash.
  const kept =
    repeated.size === 0
      ? sorted
      : sorted.flatMap((line, i) => (i > 0 && line.startsWith(hashOf(sorted[i - 1]!)) ? [] : [keptLineOf.get(hashOf(line)) ?? line]));
  return { fingerprint: createHash('sha256').update(kept.join('\n')).digest('hex'), kept: kept.length, droppedFrom, firstBatchOf };
}

/** The path of the first image of each content found in several batches, from the indexes of the batches holding them. */
function firstPaths(outputs: BatchOutputForManifest[], firstBatchOf: Map<string, number>): Map<string, string> {
  const paths = new Map<string, string>();
  for (const batch of new Set(firstBatchOf.values())) {
    for (const [path, sha256] of indexOf(outputs[batch]!)) if (firstBatchOf.get(sha256) === batch) paths.set(sha256, path);
  }
  return paths;
}

const indexOf = (output: BatchOutputForManifest) => JSON.parse(Buffer.from(output.indexJson).toString('utf8')) as IndexRow[];

/** A batch's part without its images of `dropped` content: left out as duplicates, their shard rows removed. */
async function withoutDuplicates(store: ArtifactStore, output: BatchOutputForManifest, dropped: Set<string>, firstPathOf: Map<string, string>): Promise<BatchPart> {
  const index = indexOf(output);
  const droppedPositions = new Set(index.flatMap(([, sha256], position) => (dropped.has(sha256) ? [position] : [])));
  const shards: BatchShard[] = [];
  for (const shard of output.shards) {
    const rows = shard.rows.filter((position) => !droppedPositions.has(position));
    if (rows.length === 0) continue;
    shards.push(rows.length === shard.rows.length ? shard : await withoutRows(store, shard, droppedPositions));
  }
  const duplicates = index
    .filter((_, position) => droppedPositions.has(position))
    .map(([path, sha256]): LeftOutFile => ({ path, reason: 'duplicate', detail: `same content as ${firstPathOf.get(sha256)}` }));
  return {
    shards,
    tally: tallyOf(index, shards),
    leftOut: [...output.leftOut, ...duplicates],
    indexJson: Buffer.from(JSON.stringify(index.filter((_, position) => !droppedPositions.has(position)))),
  };
}

/** A copy of a shard without the rows of the dropped images, stored as new content-addressed arrays. */
async function withoutRows(store: ArtifactStore, shard: BatchShard, dropped: Set<number>): Promise<BatchShard> {
  const keep = shard.rows.flatMap((position, row) => (dropped.has(position) ? [] : [row]));
  const images = decodeNpy(await store.read(shard.imagesUri));
  const labels = decodeNpy(await store.read(shard.labelsUri));
  const [imagesArtifact, labelsArtifact] = await Promise.all([
    store.putBlob(encodeNpy(pickRows(images, keep)), '.npy'),
    store.putBlob(encodeNpy({ dtype: 'int32', shape: [keep.length], data: Int32Array.from(keep, (row) => labels.data[row]!) }), '.npy'),
  ]);
  return { split: shard.split, imagesUri: imagesArtifact.uri, labelsUri: labelsArtifact.uri, count: keep.length, rows: keep.map((row) => shard.rows[row]!) };
}

/** JSON arrays, as `JSON.stringify` writes them, joined into one array holding all their elements, in order. */
function joinedJsonArrays(arrays: Uint8Array[]): Buffer {
  const pieces: Uint8Array[] = [];
  for (const array of arrays) {
    if (array[0] !== BYTE.open || array[array.byteLength - 1] !== BYTE.close) throw new Error('a batch index is not a JSON array');
    if (array.byteLength === 2) continue;
    if (pieces.length > 0) pieces.push(Buffer.from(','));
    pieces.push(array.subarray(1, -1));
  }
  return Buffer.concat([Buffer.from('['), ...pieces, Buffer.from(']')]);
}

const BYTE = { open: '['.charCodeAt(0), close: ']'.charCodeAt(0) };
