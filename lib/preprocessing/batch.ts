import { createHash } from 'node:crypto';
import { readJsonIfStored, type ArtifactStore } from '../artifacts';
import { mapWithConcurrency } from '../concurrency';
import type { ListedImage } from '../datasets/listing';
import { encodeNpy, npyFile, npyFileBytes } from '../npy';
import { SPLITS, splitOf, type Split } from '../split';
import type { LimitedSpec } from './limits';
import { QuarantineError, quarantineReasonOf, type LeftOutFile } from './quarantine';
import type { ImageReader, ReadOutcome } from './readers';
import { decode, decodersInUse, type Decoder } from './decoders';
import { normalizeInto } from './normalize';
import { acquireShardMemory, type ShardMemory } from './shard-memory';
import { augment, augmentationSeed, type ImageInput } from './transform';
import { canonicalJson } from '../canonical-json';
import { batchOutput, batchOutputJson, currentBatchOutput, type BatchOutput, type BatchShard, type IndexRow, type StoredBatchOutput } from './batch-output';

/**
 * Bumped whenever the same spec would produce different shards or left-out reasons, or the stored output changes
 * shape, so older cache entries stop matching and older workers never meet an output they cannot read (9: outputs
 * hold their index rows, sorted hashes and counts; 8: TensorFlow-decoded images are resized by `BilinearResizer`,
 * in fixed point).
 */
export const PREPROCESS_FORMAT = 9;

export interface BatchRun {
  output: BatchOutput;
  outputUri: string;
  cacheHit: boolean;
  bytesRead: number;
}

export interface BatchOptions {
  signal?: AbortSignal;
  /** Called after each chunk of files is read and as each image is decoded (or left out), with the images it took. */
  onProgress?: (done: number, phase: 'read' | 'decode', images: number) => void;
  /** Images decoded at once. */
  concurrency?: number;
  /** Encoded bytes kept in memory between reading and decoding (about); beyond it, files are read again to decode. */
  retainBytes?: number;
}

/** Images decoded at once: enough to keep every decoder thread fed with several images per message. */
export const DECODE_CONCURRENCY = 32;

/** Images per request to the reader. */
const READ_CHUNK = 64;
type Read = Extract<ReadOutcome, { ok: true }>;

export const cacheEntryKey = (key: string) => `cache/preprocess/${key.slice(0, 2)}/${key}.json`;

/**
 * Turns one batch of listed images into `.npy` shards, one per split. Every image is read and hashed first: the
 * hashes and the spec form the batch's cache key, and a batch already stored under it is reused without decoding.
 * Otherwise duplicates within the batch are dropped, the rest decoded (by TensorFlow or sharp, see decoders/); a file
 * that cannot be read or decoded is reported with its reason, never thrown. A failure of the worker rather than a file (out of memory or file
 * handles, an I/O error) throws, and nothing is stored, so a retry is not served a batch that left good images out.
 */
export async function preprocessImages(
  images: ListedImage[],
  reader: ImageReader,
  spec: LimitedSpec,
  store: ArtifactStore,
  options: BatchOptions = {},
): Promise<BatchRun> {
  const reads = await readAndHash(images, reader, options);
  const bytesRead = reads.reduce((sum, read) => sum + (read.ok ? read.bytes : 0), 0);
  const key = batchKey(images, reads, spec, await decodersInUse());
  const cached = await cachedOutput(store, key);
  if (cached) return { output: cached.output, outputUri: cached.uri, cacheHit: true, bytesRead };

  const leftOut: (LeftOutFile | undefined)[] = reads.map((read, i) => (read.ok ? undefined : { path: images[i]!.path, reason: read.reason, detail: read.detail }));
  const unique = dropDuplicates(images, reads, leftOut);
  const plans = planRows(unique, reads, spec);
  let shards: BatchShard[];
  let kept: ReturnType<typeof keptImages>;
  try {
    await decodeAndNormalize(plans, images, reads, reader, spec, leftOut, options);
    kept = keptImages(plans, images, reads);
    shards = await writeShards(store, plans, kept);
  } finally {
    // Only now does nothing read or write it: every decoding has ended, every shard write has settled.
    plans.memory.release();
  }
  const output = batchOutput(key, kept.index, shards, leftOut.filter((l): l is LeftOutFile => l !== undefined));
  const outputUri = await store.putNamed(cacheEntryKey(key), batchOutputJson(output));
  return { output, outputUri, cacheHit: false, bytesRead };
}

/** Reports images done to `onProgress`, and stops at cancellation. */
function progressCounter(options: BatchOptions, phase: 'read' | 'decode'): (images?: number) => void {
  let done = 0;
  return (images = 1) => {
    options.signal?.throwIfAborted();
    done += images;
    options.onProgress?.(done, phase, images);
  };
}

/** Reads and hashes every image, in chunks on the reader threads, keeping the bytes of as many as `retainBytes` allows. */
async function readAndHash(images: ListedImage[], reader: ImageReader, options: BatchOptions): Promise<ReadOutcome[]> {
  const progress = progressCounter(options, 'read');
  const chunks = Array.from({ length: Math.ceil(images.length / READ_CHUNK) }, (_, i) => images.slice(i * READ_CHUNK, (i + 1) * READ_CHUNK));
  const returnBytes = Math.floor((options.retainBytes ?? 256 * 1024 * 1024) / Math.max(1, chunks.length));
  const reads = await mapWithConcurrency(chunks, 4, async (chunk) => {
    const outcomes = await reader.read(chunk, returnBytes);
    progress(chunk.length);
    return outcomes;
  });
  return reads.flat();
}

/** Indices of the first image of each content, in listing order; later copies are left out as duplicates. */
function dropDuplicates(images: ListedImage[], reads: ReadOutcome[], leftOut: (LeftOutFile | undefined)[]): number[] {
  const firstPathOf = new Map<string, string>();
  const unique: number[] = [];
  reads.forEach((read, i) => {
    if (!read.ok) return;
    const path = images[i]!.path;
    const first = firstPathOf.get(read.sha256);
    if (first !== undefined) leftOut[i] = { path, reason: 'duplicate', detail: `same content as ${first}` };
    else {
      firstPathOf.set(read.sha256, path);
      unique.push(i);
    }
  });
  return unique;
}

/** Where an image's rows go: its split, its first row in that split's tensor, and how many rows (augmented copies). */
interface RowPlan {
  index: number;
  split: Split;
  slot: number;
  rows: number;
  decoded: Decoder | undefined;
}

type ShardPixels = Uint8Array | Float32Array;

/** A split's shard file, its rows written in place (see npyFile). */
interface ShardFile {
  data: ShardPixels;
  file(rows: number): Buffer;
}

interface PlannedRows {
  plans: RowPlan[];
  /** Each split's rows as the spec stores them: uint8 pixels or normalized float32. */
  tensors: Record<Split, ShardFile>;
  /** Values per row. */
  size: number;
  /** Where the splits' shard files are. */
  memory: ShardMemory;
}

/**
 * Splits come from content hashes, so every image's rows are known before decoding: each image is normalized straight
 * into its split's tensor, and neither its file bytes nor its decoded pixels outlive its decoding.
 */
function planRows(unique: number[], reads: ReadOutcome[], spec: LimitedSpec): PlannedRows {
  const size = spec.width * spec.height * spec.channels;
  const rowCount = { train: 0, validation: 0, test: 0 };
  const plans = unique.map((index): RowPlan => {
    const split = splitOf((reads[index] as Read).sha256, spec.validationFraction, spec.testFraction);
    const rows = 1 + (spec.augmentation && split === 'train' ? spec.augmentation.copies : 0);
    const slot = rowCount[split];
    rowCount[split] += rows;
    return { index, split, slot, rows, decoded: undefined };
  });
  const rowShape = [spec.height, spec.width, spec.channels];
  const fileBytes = SPLITS.map((split) => npyFileBytes(spec.storage, rowCount[split], rowShape));
  const memory = acquireShardMemory(fileBytes.reduce((a, b) => a + b, 0));
  let offset = 0;
  // Each file starts at a multiple of 64 bytes (npyFileBytes), so float32 rows stay aligned.
  const tensors = Object.fromEntries(
    SPLITS.map((split, i) => {
      const file = npyFile(spec.storage, rowCount[split], rowShape, memory.bytes.subarray(offset, offset + fileBytes[i]!));
      offset += fileBytes[i]!;
      return [split, file];
    }),
  ) as Record<Split, ShardFile>;
  return { plans, tensors, size, memory };
}

/**
 * Decodes each planned image (reading it again if its bytes were not kept) and writes its rows; a bad file is left out.
 * The decoder threads write uint8 rows in place. Whatever fails, it returns only once no image is being decoded any
 * more: the shard memory goes to the next batch after it.
 */
async function decodeAndNormalize(
  { plans, tensors, size }: PlannedRows,
  images: ListedImage[],
  reads: ReadOutcome[],
  reader: ImageReader,
  spec: LimitedSpec,
  leftOut: (LeftOutFile | undefined)[],
  options: BatchOptions,
): Promise<void> {
  const progress = progressCounter(options, 'decode');
  let failure: { error: unknown } | undefined;
  const throwIfStopped = () => {
    if (!failure && options.signal?.aborted) failure = { error: options.signal.reason };
    if (failure) throw new Error('the batch stopped');
  };
  const decodeOne = async (plan: RowPlan) => {
    const read = reads[plan.index] as Read;
    try {
      const input = read.input ?? (await readAgain(reader, images[plan.index]!, read.sha256));
      read.input = null;
      throwIfStopped();
      const rows = tensors[plan.split].data;
      const into = rows instanceof Uint8Array ? rows.subarray(plan.slot * size, (plan.slot + 1) * size) : undefined;
      const { pixels, decoder } = await decode(input, spec, undefined, into);
      if (pixels !== into) storeRow(pixels, spec, rows, plan.slot * size);
      for (let copy = 1; copy < plan.rows; copy++) {
        const augmented = await augment(pixels, spec, spec.augmentation!, augmentationSeed(spec.augmentation!, read.sha256, copy));
        storeRow(augmented, spec, rows, (plan.slot + copy) * size);
      }
      plan.decoded = decoder;
    } catch (err) {
      const reason = quarantineReasonOf(err);
      if (!reason) throw err;
      leftOut[plan.index] = { path: images[plan.index]!.path, reason, detail: (err as Error).message };
    }
    // Counted as each image ends: many images start at once, and slow ones must still heartbeat as they finish.
    progress();
  };
  // Each lane decodes one image at a time and stops starting images at the first failure, so once every lane has
  // returned, no image is being decoded.
  let next = 0;
  const lane = async () => {
    while (!failure && next < plans.length) {
      const plan = plans[next++]!;
      try {
        throwIfStopped();
        await decodeOne(plan);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? DECODE_CONCURRENCY, plans.length) }, lane));
  if (failure) throw failure.error;
}

/** Writes one image's pixels into its split's rows, as they are or normalized, as the spec stores them. */
function storeRow(pixels: Uint8Array, spec: LimitedSpec, rows: ShardPixels, offset: number): void {
  if (rows instanceof Uint8Array) rows.set(pixels, offset);
  else normalizeInto(pixels, spec, rows, offset);
}

/** The decoded images in listing order as index rows, and each one's position in that list by its index in the batch. */
function keptImages({ plans }: PlannedRows, images: ListedImage[], reads: ReadOutcome[]): { index: IndexRow[]; positionOf: Map<number, number> } {
  const index: IndexRow[] = [];
  const positionOf = new Map<number, number>();
  for (const plan of plans) {
    if (!plan.decoded) continue;
    const image = images[plan.index]!;
    positionOf.set(plan.index, index.push([image.path, (reads[plan.index] as Read).sha256, plan.split, image.label, plan.decoded]) - 1);
  }
  return { index, positionOf };
}

/** One image shard and one label shard per split that kept any image. */
async function writeShards(store: ArtifactStore, { plans, tensors, size }: PlannedRows, kept: ReturnType<typeof keptImages>): Promise<BatchShard[]> {
  const shards: BatchShard[] = [];
  for (const split of SPLITS) {
    // Close the gaps left by images that failed to decode, keeping listing order.
    const { data: pixels, file } = tensors[split];
    const labels: number[] = [];
    const rows: number[] = [];
    for (const plan of plans) {
      if (plan.split !== split || !plan.decoded) continue;
      if (plan.slot !== labels.length) pixels.copyWithin(labels.length * size, plan.slot * size, (plan.slot + plan.rows) * size);
      const position = kept.positionOf.get(plan.index)!;
      for (let copy = 0; copy < plan.rows; copy++) {
        labels.push(kept.index[position]![3]);
        rows.push(position);
      }
    }
    if (rows.length > 0) shards.push(await writeShard(store, split, file(rows.length), labels, rows));
  }
  return shards;
}

function batchKey(images: ListedImage[], reads: ReadOutcome[], spec: LimitedSpec, decoders: string): string {
  const hash = createHash('sha256').update(`format ${PREPROCESS_FORMAT} ${decoders}\n${canonicalJson(spec)}\n`);
  reads.forEach((read, i) => hash.update(`${images[i]!.path}\0${images[i]!.label}\0${read.ok ? read.sha256 : `!${read.reason}`}\n`));
  return hash.digest('hex');
}

async function cachedOutput(store: ArtifactStore, key: string): Promise<{ output: BatchOutput; uri: string } | undefined> {
  const uri = store.uriOf(cacheEntryKey(key));
  const stored = await readJsonIfStored<StoredBatchOutput>(store, uri);
  if (!stored) return undefined;
  const output = currentBatchOutput(stored);
  const present = await Promise.all(output.shards.flatMap((s) => [store.isIntactBlob(s.imagesUri), store.isIntactBlob(s.labelsUri)]));
  return present.every(Boolean) ? { output, uri } : undefined;
}

async function readAgain(reader: ImageReader, image: ListedImage, sha256: string): Promise<ImageInput> {
  const [read] = await reader.read([image], Infinity, 'oneImage');
  if (!read?.ok || read.sha256 !== sha256 || !read.input) throw new QuarantineError('unreadable', 'changed while the batch was being read');
  return read.input;
}

/** Returns, or throws, once both writes have settled: `imagesFile` is the batch's shard memory, reused after. */
async function writeShard(store: ArtifactStore, split: Split, imagesFile: Buffer, labels: number[], rows: number[]): Promise<BatchShard> {
  const [imagesArtifact, labelsArtifact] = await Promise.allSettled([
    store.putBlob(imagesFile, '.npy'),
    store.putBlob(encodeNpy({ dtype: 'int32', shape: [rows.length], data: Int32Array.from(labels) }), '.npy'),
  ]);
  if (imagesArtifact.status === 'rejected') throw imagesArtifact.reason;
  if (labelsArtifact.status === 'rejected') throw labelsArtifact.reason;
  return { split, imagesUri: imagesArtifact.value.uri, labelsUri: labelsArtifact.value.uri, count: rows.length, rows };
}
