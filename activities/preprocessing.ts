import { Context, heartbeat } from '@temporalio/activity';
import { basename } from 'node:path';
import { settings, WORKER_LIMITS } from '../lib/config';
import { artifactStore } from '../lib/artifacts';
import { readIdxFile } from '../lib/datasets/idx';
import { EmptyDatasetError, listImageFolder } from '../lib/datasets/folder';
import { batchImages, LISTING_INDEX, listingFiles, roundRobin, type IdxImageFile, type ListedImage, type ListingIndex } from '../lib/datasets/listing';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { resolveSource, type ResolvedSource } from '../lib/datasets/sources';
import { imagesPreprocessed, imagesQuarantined, preprocessBatchDuration, preprocessBytesRead, preprocessImagesPerSecond } from '../lib/metrics';
import { assembleManifest } from '../lib/preprocessing/assemble';
import { preprocessImages } from '../lib/preprocessing/batch';
import { recordBatchOutput, recordedBatchOutputs } from '../lib/preprocessing/batch-outputs';
import { withinLimits } from '../lib/preprocessing/limits';
import { QuarantineError } from '../lib/preprocessing/quarantine';
import { folderReader, idxReader, type ImageReader } from '../lib/preprocessing/readers';
import { listS3ImageFolder, s3Reader } from '../lib/datasets/s3-folder';
import { environmentS3Client } from '../lib/s3-artifacts';
import { batchSizeFor, type Batching, type DatasetSource, type PreprocessSpec } from '../lib/schemas/preprocess';
import type { Split } from '../lib/split';
import { throttled } from '../lib/throttle';
import { invalidInput } from '../lib/validate';

/**
 * Heartbeats from a loop's progress, every `everyItems` steps or every second, whichever comes first: slow steps
 * still heartbeat (and hear of cancellation), and a loop that stops progressing stops heartbeating.
 */
const heartbeatEvery = (everyItems: number) => throttled(heartbeat, { everyItems, everyMs: 1000 });

export interface ListDatasetInput {
  dataset: DatasetSource;
  spec: PreprocessSpec;
  batching: Batching;
}

export interface DatasetListing {
  /** A directory artifact: `index.json` plus the listed images in files of a fixed size. */
  listingUri: string;
  count: number;
  batchSize: number;
  batches: number;
}

/** Lists a dataset source and stores the listing in files of a fixed size, so each batch reads only its own slice. */
export async function listDataset(input: ListDatasetInput): Promise<DatasetListing> {
  const { limits } = settings();
  const batchSize = batchSizeFor(input.spec, input.batching, limits.maxBatchTensorBytes);
  withinLimits(input.spec, batchSize, limits);
  const resolved = await resolveSource(input.dataset.source);
  const { classes, perClass, idxFiles } =
    resolved.format === 'folder' ? await listFolder(resolved.root) : resolved.format === 's3' ? await listS3Folder(resolved.bucket, resolved.prefix) : await listIdx(resolved);
  const images = roundRobin(perClass, input.dataset.maxImages);
  const batches = Math.ceil(images.length / batchSize);
  const index: ListingIndex = { source: input.dataset.source, classes, count: images.length, batchSize, batches, idxFiles };
  const { uri } = await artifactStore().putDirectory(listingFiles(index, images));
  return { listingUri: uri, count: images.length, batchSize, batches };
}

interface SourceImages {
  classes: string[];
  perClass: ListedImage[][];
  idxFiles: IdxImageFile[];
}

async function listFolder(root: string): Promise<SourceImages> {
  try {
    const beat = heartbeatEvery(1000);
    let entries = 0;
    return { ...(await listImageFolder(root, (count) => beat({ entries: (entries += count) }, count))), idxFiles: [] };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw invalidInput('dataset.source', `no folder at ${root}`);
    if (err instanceof EmptyDatasetError) throw invalidInput('dataset.source', err.message);
    throw err;
  }
}

async function listS3Folder(bucket: string, prefix: string): Promise<SourceImages> {
  try {
    const beat = heartbeatEvery(1000);
    let entries = 0;
    return { ...(await listS3ImageFolder(environmentS3Client(), bucket, prefix, () => beat({ entries: ++entries }))), idxFiles: [] };
  } catch (err) {
    if (err instanceof EmptyDatasetError) throw invalidInput('dataset.source', err.message);
    if (err instanceof Error && err.name === 'NoSuchBucket') throw invalidInput('dataset.source', `no bucket ${bucket} at this worker's object store`);
    throw err;
  }
}

async function listIdx(source: Extract<ResolvedSource, { format: 'idx' }>): Promise<SourceImages> {
  const store = artifactStore();
  const idxFiles: IdxImageFile[] = [];
  const labelled: ListedImage[] = [];
  for (const [file, imagesPath] of source.images.entries()) {
    const labelsPath = source.labels[file]!;
    const [images, labels] = await Promise.all([readIdxOrFail(source.root, imagesPath, 'images'), readIdxOrFail(source.root, labelsPath, 'labels')]);
    if (images.shape.length !== 3) throw invalidInput('dataset.source.images', `${imagesPath} holds a ${images.shape.length}-d array; image files are [count, rows, columns]`);
    if (labels.shape.length !== 1) throw invalidInput('dataset.source.labels', `${labelsPath} holds a ${labels.shape.length}-d array; label files are [count]`);
    const [count, height, width] = images.shape as [number, number, number];
    if (labels.shape[0] !== count) throw invalidInput('dataset.source.labels', `${labelsPath} has ${labels.shape[0]} labels for ${count} images in ${imagesPath}`);
    const { uri } = await store.putBlob(images.data, '.u8');
    idxFiles.push({ path: basename(imagesPath), pixelsUri: uri, count, width, height });
    for (let i = 0; i < count; i++) labelled.push({ path: `${basename(imagesPath)}#${i}`, label: labels.data[i]!, record: [file, i] });
    heartbeat({ listed: labelled.length });
  }
  const maxLabel = labelled.reduce((max, image) => Math.max(max, image.label), 0);
  const classes = source.classes ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  if (maxLabel >= classes.length) throw invalidInput('dataset.source.classes', `labels go up to ${maxLabel} but only ${classes.length} class names are given`);
  if (labelled.length === 0) throw invalidInput('dataset.source', 'the IDX files hold no images');
  const perClass = classes.map(() => [] as ListedImage[]);
  for (const image of labelled) perClass[image.label]!.push(image);
  return { classes, perClass, idxFiles };
}

async function readIdxOrFail(root: string, path: string, what: 'images' | 'labels') {
  const { maxIdxBytes } = settings().limits;
  try {
    return await readIdxFile(root, path, maxIdxBytes);
  } catch (err) {
    if (!(err instanceof QuarantineError)) throw err;
    const ceiling = err.reason === 'too_large' ? ` (this worker's ceiling for IDX files, ${WORKER_LIMITS.maxIdxBytes.variable})` : '';
    throw invalidInput(`dataset.source.${what}`, `${path}: ${err.message}${ceiling}`);
  }
}

export interface PreprocessBatchInput {
  listingUri: string;
  batch: number;
  spec: PreprocessSpec;
}

/** A batch's output (shards, kept images, files left out) is stored under its cache key and recorded for writeManifest. */
export interface PreprocessBatchResult {
  listed: number;
  kept: number;
  leftOut: number;
  cacheHit: boolean;
  bytesRead: number;
  seconds: number;
}

/** Reads, decodes and shards one batch of a listing; reuses an earlier identical batch's shards. */
export async function preprocessBatch(input: PreprocessBatchInput): Promise<PreprocessBatchResult> {
  const started = performance.now();
  const store = artifactStore();
  const index = await store.readJson<ListingIndex>(`${input.listingUri}/${LISTING_INDEX}`);
  const images = await batchImages(index, input.batch, (name) => store.readJson<ListedImage[]>(`${input.listingUri}/${name}`));
  const spec = withinLimits(input.spec, images.length, settings().limits);
  const reader = index.idxFiles.length > 0 ? idxReader(index.idxFiles, store) : await sourceReader(index, spec.maxFileBytes);
  // Every image reports progress; the SDK sends at most one heartbeat per throttle interval anyway, and each call costs
  // the event loop a payload conversion, so small images (thousands a second) heartbeat every 1,000 or every second.
  const beat = heartbeatEvery(1000);
  try {
    const run = await preprocessImages(images, reader, spec, store, {
      signal: Context.current().cancellationSignal,
      onProgress: (done, phase, images) => beat({ phase, done }, images),
    });
    await recordBatchOutput(store, input.listingUri, input.spec, input.batch, run.outputUri);
    const seconds = (performance.now() - started) / 1000;
    const cache = run.cacheHit ? 'hit' : 'miss';
    const { output } = run;
    const kept = output.byHash.sha256.length;
    imagesPreprocessed.inc({ cache }, kept);
    preprocessBytesRead.inc(run.bytesRead);
    preprocessBatchDuration.observe({ cache }, seconds);
    if (!run.cacheHit) preprocessImagesPerSecond.set(images.length / seconds);
    for (const file of output.leftOut) imagesQuarantined.inc({ reason: file.reason });
    return { listed: images.length, kept, leftOut: output.leftOut.length, cacheHit: run.cacheHit, bytesRead: run.bytesRead, seconds };
  } finally {
    await reader.close?.();
  }
}

async function sourceReader(index: ListingIndex, maxFileBytes: number): Promise<ImageReader> {
  const resolved = await resolveSource(index.source);
  if (resolved.format === 'folder') return folderReader(resolved.root, maxFileBytes);
  if (resolved.format === 's3') return s3Reader(environmentS3Client(), resolved.bucket, resolved.prefix, maxFileBytes);
  throw new Error('a folder listing names an IDX source');
}

export interface WriteManifestInput {
  listingUri: string;
  spec: PreprocessSpec;
}

export interface DatasetSummary {
  manifestUri: string;
  classes: string[];
  counts: Record<Split, number>;
  images: DatasetManifest['images'];
  leftOutByReason: DatasetManifest['leftOutByReason'];
  /** Distinct images kept per decoder. */
  decoders: NonNullable<DatasetManifest['decoders']>;
  fingerprint: string;
}

/** Combines the outputs of a listing's batches into the dataset manifest, stored as a content-addressed JSON artifact. */
export async function writeManifest(input: WriteManifestInput): Promise<DatasetSummary> {
  const store = artifactStore();
  const index = await store.readJson<ListingIndex>(`${input.listingUri}/${LISTING_INDEX}`);
  const beat = heartbeatEvery(10);
  const outputs = recordedBatchOutputs(store, input.listingUri, input.spec, index.batches);
  const manifest = await assembleManifest(store, index, input.spec, outputs, beat);
  const { uri } = await store.putBlob(Buffer.from(JSON.stringify(manifest, null, 1)), '.json');
  if (manifest.counts.train === 0) {
    throw invalidInput('dataset.source', `no image could be used for the training split; the report of files left out is in ${uri} (${store.locationOf(uri)})`);
  }
  return {
    manifestUri: uri,
    classes: manifest.classes,
    counts: manifest.counts,
    images: manifest.images,
    leftOutByReason: manifest.leftOutByReason,
    decoders: manifest.decoders ?? { tensorflow: 0, png: 0, sharp: manifest.images.kept },
    fingerprint: manifest.fingerprint,
  };
}
