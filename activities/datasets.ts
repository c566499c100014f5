import { heartbeat } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactPathError, artifactStore, confine } from '../lib/artifacts';
import { settings } from '../lib/config';
import { EmptyDatasetError, listImageFolder, type FolderListing } from '../lib/datasets/folder';
import type { DatasetManifest, QuarantinedFile, ShardRef } from '../lib/datasets/manifest';
import { materializeMnistDigits } from '../lib/datasets/mnist-digits';
import { decodeImage } from '../lib/images';
import { imagesPreprocessed, imagesQuarantined } from '../lib/metrics';
import { encodeNpy } from '../lib/npy';
import type { DatasetSource, PreprocessSpec } from '../lib/schemas/preprocess';
import { SPLITS, splitOf, type Split } from '../lib/split';
import { invalidInput } from '../lib/validate';

const BUILTIN_DATASETS: Record<string, (dir: string) => Promise<string>> = {
  'builtin:mnist-digits': materializeMnistDigits,
};

export interface DatasetListing {
  listingUri: string;
  source: string;
  classes: string[];
  count: number;
}

interface StoredListing extends FolderListing {
  root: string;
}

async function resolveSource(source: string): Promise<string> {
  const builtin = BUILTIN_DATASETS[source];
  if (builtin) return builtin(join(settings().dataDir, 'builtin', source.slice('builtin:'.length)));
  if (source.startsWith('builtin:')) {
    throw invalidInput('dataset.source', `unknown built-in dataset "${source}"; available: ${Object.keys(BUILTIN_DATASETS).join(', ')}`);
  }
  try {
    return confine(settings().datasetsRoot, source, 'dataset');
  } catch (err) {
    if (err instanceof ArtifactPathError) throw invalidInput('dataset.source', err.message);
    throw err;
  }
}

/** Lists a dataset source and stores the listing as an artifact: batches read their slice of it by URI. */
export async function listDataset(input: DatasetSource): Promise<DatasetListing> {
  const root = await resolveSource(input.source);
  let listing: FolderListing;
  try {
    listing = await listImageFolder(root, input.maxImages);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw invalidInput('dataset.source', `no folder at ${root}`);
    if (err instanceof EmptyDatasetError) throw invalidInput('dataset.source', err.message);
    throw err;
  }
  const stored: StoredListing = { root, ...listing };
  const { uri } = await artifactStore().putBlob(Buffer.from(JSON.stringify(stored)), '.json');
  return { listingUri: uri, source: input.source, classes: listing.classes, count: listing.files.length };
}

export interface PreprocessBatchInput {
  listingUri: string;
  offset: number;
  count: number;
  spec: PreprocessSpec;
}

export interface PreprocessBatchResult {
  shards: ShardRef[];
  countsPerClass: Record<Split, number[]>;
  quarantined: QuarantinedFile[];
  /** sha256 over the content hashes of the images kept, in listing order. */
  fingerprint: string;
  duplicates: number;
}

/** Decodes one slice of a listing with sharp and writes one `.npy` image and label shard per split. */
export async function preprocessBatch(input: PreprocessBatchInput): Promise<PreprocessBatchResult> {
  const store = artifactStore();
  const listing = await store.readJson<StoredListing>(input.listingUri);
  const files = listing.files.slice(input.offset, input.offset + input.count);
  const { width, height, channels } = input.spec;
  const pixelsPerImage = width * height * channels;
  const decoded: ({ split: Split; label: number; pixels: Float32Array; sha256: string } | { path: string; reason: string } | undefined)[] =
    new Array(files.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < files.length) {
      const index = next++;
      const file = files[index]!;
      try {
        const bytes = await readFile(confine(listing.root, file.path, 'dataset file'));
        if (bytes.length === 0) throw new Error('empty file');
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const pixels = await decodeImage(bytes, { width, height, channels });
        decoded[index] = { split: splitOf(sha256, input.spec.validationFraction, input.spec.testFraction), label: file.label, pixels, sha256 };
      } catch (err) {
        decoded[index] = { path: file.path, reason: (err as Error).message };
      }
      if (++done % 200 === 0) heartbeat({ done });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));

  const seen = new Set<string>();
  const kept: Record<Split, { label: number; pixels: Float32Array }[]> = { train: [], validation: [], test: [] };
  const quarantined: QuarantinedFile[] = [];
  const fingerprint = createHash('sha256');
  let duplicates = 0;
  for (const item of decoded) {
    if (!item) continue;
    if ('reason' in item) {
      quarantined.push(item);
      continue;
    }
    if (seen.has(item.sha256)) {
      duplicates++;
      continue;
    }
    seen.add(item.sha256);
    fingerprint.update(item.sha256);
    kept[item.split].push(item);
  }

  const shards: ShardRef[] = [];
  const countsPerClass = Object.fromEntries(SPLITS.map((s) => [s, new Array(listing.classes.length).fill(0)])) as Record<Split, number[]>;
  for (const split of SPLITS) {
    const items = kept[split];
    if (items.length === 0) continue;
    const images = new Float32Array(items.length * pixelsPerImage);
    const labels = new Int32Array(items.length);
    items.forEach((item, i) => {
      images.set(item.pixels, i * pixelsPerImage);
      labels[i] = item.label;
      countsPerClass[split][item.label]!++;
    });
    const [imagesArtifact, labelsArtifact] = await Promise.all([
      store.putBlob(encodeNpy({ dtype: 'float32', shape: [items.length, height, width, channels], data: images }), '.npy'),
      store.putBlob(encodeNpy({ dtype: 'int32', shape: [items.length], data: labels }), '.npy'),
    ]);
    shards.push({ split, imagesUri: imagesArtifact.uri, labelsUri: labelsArtifact.uri, count: items.length });
  }
  imagesPreprocessed.inc(seen.size);
  for (const q of quarantined) imagesQuarantined.inc({ reason: quarantineReason(q.reason) });
  return { shards, countsPerClass, quarantined, fingerprint: fingerprint.digest('hex'), duplicates };
}

/** A bounded label for the quarantine metric, from sharp's or the reader's message. */
function quarantineReason(message: string): string {
  if (/empty file/.test(message)) return 'empty';
  if (/pixel limit/i.test(message)) return 'too_large';
  if (/unsupported image format|Input buffer contains unsupported/i.test(message)) return 'not_an_image';
  if (/EACCES|EPERM/.test(message)) return 'unreadable';
  return 'corrupt';
}

export interface WriteManifestInput {
  source: string;
  classes: string[];
  spec: PreprocessSpec;
  batches: PreprocessBatchResult[];
}

/** Combines the batch results into the dataset manifest, stored as a content-addressed JSON artifact. */
export async function writeManifest(input: WriteManifestInput): Promise<{ manifestUri: string; counts: Record<Split, number>; quarantined: number }> {
  const counts = { train: 0, validation: 0, test: 0 };
  const countsPerClass = Object.fromEntries(SPLITS.map((s) => [s, new Array(input.classes.length).fill(0)])) as Record<Split, number[]>;
  const fingerprint = createHash('sha256');
  for (const batch of input.batches) {
    fingerprint.update(batch.fingerprint);
    for (const split of SPLITS) {
      batch.countsPerClass[split].forEach((n, label) => (countsPerClass[split][label]! += n));
    }
    for (const shard of batch.shards) counts[shard.split] += shard.count;
  }
  const manifest: DatasetManifest = {
    version: 1,
    source: input.source,
    classes: input.classes,
    shape: [input.spec.height, input.spec.width, input.spec.channels],
    dtype: 'float32',
    spec: input.spec,
    counts,
    countsPerClass,
    shards: input.batches.flatMap((b) => b.shards),
    quarantined: input.batches.flatMap((b) => b.quarantined),
    fingerprint: fingerprint.digest('hex'),
  };
  if (counts.train === 0) throw invalidInput('dataset.source', 'no image could be decoded for the training split; see the quarantine report');
  const { uri } = await artifactStore().putBlob(Buffer.from(JSON.stringify(manifest, null, 2)), '.json');
  return { manifestUri: uri, counts, quarantined: manifest.quarantined.length };
}
