import { z } from 'zod';
import type { ArtifactStore } from '../artifacts';
import { QUARANTINE_REASONS } from '../preprocessing/quarantine';
import { preprocessSpecSchema, type DatasetSourceDescriptor } from '../schemas/preprocess';
import { SPLITS } from '../split';

/** A dataset that cannot be trained on as it is (a manifest that is not one, a shard that is gone): retrying cannot help. */
export class InvalidDatasetError extends Error {
  override name = 'InvalidDatasetError';
}

const count = z.int().min(0);
const perSplit = <T extends z.ZodType>(value: T) => z.strictObject({ train: value, validation: value, test: value });

const shardRefSchema = z.strictObject({
  split: z.enum(['train', 'validation', 'test']),
  /** `.npy` of pixels in the manifest's dtype, [count, height, width, channels]. */
  imagesUri: z.string().min(1),
  /** `.npy` of int32 class indices, [count]. */
  labelsUri: z.string().min(1),
  count,
});

/** What a preprocessing run produced; stored as JSON beside the shards and passed around by URI. */
export const datasetManifestSchema = z
  .strictObject({
    version: z.literal(2),
    source: z.union([z.string(), z.custom<DatasetSourceDescriptor>((v) => typeof v === 'object' && v !== null && 'format' in v, 'a dataset source')]),
    classes: z.array(z.string()).min(1),
    shape: z.tuple([z.int().positive(), z.int().positive(), z.int().positive()]),
    /** How shards hold pixels: `uint8` as decoded (normalized by `spec.normalization` when loaded), `float32` normalized. */
    dtype: z.enum(['uint8', 'float32']),
    spec: preprocessSpecSchema,
    /** Rows per split, augmented copies included. */
    counts: perSplit(count),
    countsPerClass: perSplit(z.array(count)),
    images: z.strictObject({
      /** Files (or IDX records) listed from the source. */
      listed: count,
      /** Distinct images written (each once, whatever its augmented copies). */
      kept: count,
      leftOut: count,
      augmentedCopies: count,
    }),
    /** Distinct images kept per decoder (absent from manifests written before TensorFlow decoded any; `png` from those before PNGs were inflated). */
    decoders: z.strictObject({ tensorflow: count, png: count.default(0), sharp: count }).optional(),
    shards: z.array(shardRefSchema),
    /** JSON array of every distinct image kept, in listing order: [path, sha256 of its content, split, label, decoder]. */
    imagesIndexUri: z.string().min(1),
    /** Every listed file that is not in a shard, and why. */
    leftOut: z.array(z.strictObject({ path: z.string(), reason: z.enum(QUARANTINE_REASONS), detail: z.string() })),
    leftOutByReason: z.partialRecord(z.enum(QUARANTINE_REASONS), count),
    /** sha256 over the sorted content hashes and class names of the images kept: the same images give the same value. */
    fingerprint: z.string(),
  })
  .superRefine((manifest, ctx) => {
    for (const split of SPLITS) {
      const inShards = manifest.shards.filter((s) => s.split === split).reduce((n, s) => n + s.count, 0);
      if (inShards !== manifest.counts[split]) {
        ctx.addIssue({ code: 'custom', path: ['counts', split], message: `says ${manifest.counts[split]} but the shards hold ${inShards}` });
      }
    }
  });

export type DatasetManifest = z.output<typeof datasetManifestSchema>;
export type ShardRef = z.output<typeof shardRefSchema>;

/**
 * Reads and validates a manifest. One that is missing, not JSON or not a manifest is an InvalidDatasetError naming the
 * file; any other read failure (EACCES, EIO) is thrown as it is, for a retry.
 */
export async function readManifest(store: ArtifactStore, uri: string): Promise<DatasetManifest> {
  let text: string;
  try {
    text = (await store.read(uri)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidDatasetError(`no dataset manifest at ${uri}`);
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidDatasetError(`the dataset manifest ${uri} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = datasetManifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(manifest)'}: ${issue.message}`);
    throw new InvalidDatasetError(`${uri} is not a valid dataset manifest: ${problems.join('; ')}`);
  }
  return parsed.data;
}
