import type { ArtifactStore } from '../artifacts';
import type { ShardRef } from '../datasets/manifest';
import type { Split } from '../split';
import type { Decoder } from './decoders';
import type { LeftOutFile } from './quarantine';

/** An image kept, as a row of the manifest's image index: [path, sha256 of its content, split, label, decoder]. */
export type IndexRow = [path: string, sha256: string, split: Split, label: number, decoder: Decoder];

export interface BatchShard extends ShardRef {
  /** For each row of the shard, the position of its source image in the batch's index (augmented copies repeat it). */
  rows: number[];
}

/** Counts over the images a batch's shards hold. */
export interface BatchTally {
  /** Shard rows per split and label, augmented copies included; each array reaches the highest label the batch kept. */
  rowsPerLabel: Record<Split, number[]>;
  decoders: Record<Decoder, number>;
  augmentedCopies: number;
}

/**
 * What one batch produced; stored under its cache key, so it depends only on the images' content and the spec. Stored
 * as JSON with `index` last (`batchOutputJson`): the manifest takes the index's text as it is (`readBatchOutputForManifest`).
 */
export interface BatchOutput {
  key: string;
  /**
   * The kept images' content hashes in ascending order, each with its label: all the manifest needs of every image
   * (the dataset's fingerprint, duplicates across batches) besides the index's text.
   */
  byHash: { sha256: string[]; label: number[] };
  tally: BatchTally;
  shards: BatchShard[];
  leftOut: LeftOutFile[];
  /** The images kept, in listing order, as index rows: the manifest's index is these arrays joined. */
  index: IndexRow[];
}

/** A batch's output as stored before the index and counts were made in the batch: each kept image an object in `images`. */
interface InlineImagesOutput {
  key: string;
  images: { path: string; sha256: string; label: number; split: Split; decoder: Decoder }[];
  shards: BatchShard[];
  leftOut: LeftOutFile[];
}

/** A batch output as it may be found in a store: current, or with its images as objects. */
export type StoredBatchOutput = BatchOutput | InlineImagesOutput;

/** A batch's output, every count over the images it keeps made here, in the batch, rather than in the manifest. */
export function batchOutput(key: string, index: IndexRow[], shards: BatchShard[], leftOut: LeftOutFile[]): BatchOutput {
  const byHash = index.map((_, position) => position).sort((a, b) => (index[a]![1] < index[b]![1] ? -1 : 1));
  return {
    key,
    byHash: { sha256: byHash.map((position) => index[position]![1]), label: byHash.map((position) => index[position]![3]) },
    tally: tallyOf(index, shards),
    shards,
    leftOut,
    index,
  };
}

/** Counts over the images `shards` hold (an image in no shard is not counted). */
export function tallyOf(index: IndexRow[], shards: BatchShard[]): BatchTally {
  const labels = index.reduce((highest, row) => Math.max(highest, row[3]), -1) + 1;
  const tally: BatchTally = {
    rowsPerLabel: { train: new Array<number>(labels).fill(0), validation: new Array<number>(labels).fill(0), test: new Array<number>(labels).fill(0) },
    decoders: { tensorflow: 0, png: 0, sharp: 0 },
    augmentedCopies: 0,
  };
  const counted = new Set<number>();
  for (const shard of shards) {
    for (const position of shard.rows) {
      const [, , , label, decoder] = index[position]!;
      tally.rowsPerLabel[shard.split][label]!++;
      if (counted.has(position)) tally.augmentedCopies++;
      else tally.decoders[decoder]++;
      counted.add(position);
    }
  }
  return tally;
}

/** An output found in a store, as a current one. */
export function currentBatchOutput(stored: StoredBatchOutput): BatchOutput {
  if (!('images' in stored)) return stored;
  const index = stored.images.map(({ path, sha256, split, label, decoder }): IndexRow => [path, sha256, split, label, decoder]);
  return batchOutput(stored.key, index, stored.shards, stored.leftOut);
}

/** The JSON an output is stored as: `index` written last, after everything else the manifest parses. */
export function batchOutputJson({ index, ...rest }: BatchOutput): string {
  return JSON.stringify({ ...rest, index });
}

/** An output without its index, and the index's JSON text (an array of index rows). */
export type BatchOutputForManifest = Omit<BatchOutput, 'index'> & { indexJson: Uint8Array };

/** Ends every output `batchOutputJson` writes: no other `"index"` key comes before it, and strings escape their quotes. */
const INDEX_FIELD = Buffer.from(',"index":');
const CLOSING_BRACE = '}'.charCodeAt(0);

/** Reads a stored output for the manifest: everything but the index parsed, the index's text taken as it is. */
export async function readBatchOutputForManifest(store: ArtifactStore, uri: string): Promise<BatchOutputForManifest> {
  const bytes = await store.read(uri);
  const at = bytes.lastIndexOf(INDEX_FIELD);
  if (at < 0 || bytes[bytes.length - 1] !== CLOSING_BRACE) {
    const { index, ...rest } = currentBatchOutput(JSON.parse(bytes.toString('utf8')) as StoredBatchOutput);
    return { ...rest, indexJson: Buffer.from(JSON.stringify(index)) };
  }
  const rest = JSON.parse(`${bytes.subarray(0, at).toString('utf8')}}`) as Omit<BatchOutput, 'index'>;
  // A copy: a view would keep the whole file, parsed already, in memory until the manifest is written.
  return { ...rest, indexJson: Buffer.from(bytes.subarray(at + INDEX_FIELD.length, bytes.length - 1)) };
}
