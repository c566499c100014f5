import { z } from 'zod';

export const BUILTIN_DATASETS = ['mnist-digits', 'fashion-mnist'] as const;

const folderSourceSchema = z.strictObject({
  format: z.literal('folder'),
  /** Folder under the datasets root with one sub-folder per class (the layout Keras' `image_dataset_from_directory` reads). */
  path: z.string().min(1),
});

const idxSourceSchema = z.strictObject({
  format: z.literal('idx'),
  /** IDX image files (gzipped or not) under the datasets root, as MNIST and Fashion-MNIST ship them. */
  images: z.array(z.string().min(1)).min(1),
  /** The matching IDX label files, in the same order. */
  labels: z.array(z.string().min(1)).min(1),
  /** Class names by label value; `"0"`, `"1"`, ... when left out. */
  classes: z.array(z.string().min(1)).min(1).optional(),
});

const s3SourceSchema = z.strictObject({
  format: z.literal('s3'),
  /** `s3://bucket/prefix` with one prefix per class under it; the endpoint and credentials are the worker's (AWS environment). */
  url: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'must be s3://bucket or s3://bucket/prefix'),
});

const builtinSourceSchema = z.strictObject({
  format: z.literal('builtin'),
  name: z.enum(BUILTIN_DATASETS),
});

/**
 * Where images come from. The string shorthand `"builtin:<name>"` names a built-in set, `"s3://bucket/prefix"` class
 * prefixes in object storage; any other string is a folder under the datasets root.
 */
export const sourceSchema = z
  .union([z.string().min(1), z.discriminatedUnion('format', [folderSourceSchema, idxSourceSchema, s3SourceSchema, builtinSourceSchema])])
  .transform((source, ctx): DatasetSourceDescriptor => {
    if (typeof source !== 'string') {
      if (source.format === 'idx' && source.images.length !== source.labels.length) {
        ctx.addIssue({ code: 'custom', message: `${source.images.length} image files but ${source.labels.length} label files` });
        return z.NEVER;
      }
      return source;
    }
    if (source.startsWith('s3://')) {
      const parsed = s3SourceSchema.safeParse({ format: 's3', url: source });
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: `${source}: ${parsed.error.issues[0]!.message}` });
        return z.NEVER;
      }
      return parsed.data;
    }
    if (!source.startsWith('builtin:')) return { format: 'folder', path: source };
    const name = source.slice('builtin:'.length);
    if (!(BUILTIN_DATASETS as readonly string[]).includes(name)) {
      ctx.addIssue({ code: 'custom', message: `unknown built-in dataset "${source}"; available: ${BUILTIN_DATASETS.map((n) => `builtin:${n}`).join(', ')}` });
      return z.NEVER;
    }
    return { format: 'builtin', name: name as (typeof BUILTIN_DATASETS)[number] };
  });

export type DatasetSourceDescriptor = z.output<typeof folderSourceSchema> | z.output<typeof idxSourceSchema> | z.output<typeof s3SourceSchema> | z.output<typeof builtinSourceSchema>;

export const datasetSourceSchema = z.strictObject({
  source: sourceSchema.prefault('builtin:mnist-digits'),
  /** At most this many images, taken round-robin across classes so every class is represented; null for all. */
  maxImages: z.int().positive().nullable().default(null),
});

const normalizationSchema = z.strictObject({
  /** Pixels (0-255) are multiplied by this first. */
  scale: z.number().positive().default(1 / 255),
  /** Then, per channel, `(value - mean) / std`; one value applies to every channel. */
  mean: z.array(z.number()).min(1).max(3).default([0]),
  std: z.array(z.number().positive()).min(1).max(3).default([1]),
});

const augmentationSchema = z.strictObject({
  /**
   * Augmented copies written per training image, besides the original. Validation and test images are never augmented.
   * At most the worker's ceiling (checked where the worker runs).
   */
  copies: z.int().min(1).default(1),
  /** Seed of every random choice, so the same input always yields the same copies. */
  seed: z.int().min(0).default(0),
  horizontalFlip: z.boolean().default(true),
  verticalFlip: z.boolean().default(false),
  /** Rotation by a uniform random angle in [-rotationDegrees, rotationDegrees]. */
  rotationDegrees: z.number().min(0).max(180).default(10),
  /** A random crop keeping at least `1 - cropFraction` of each side, resized back. */
  cropFraction: z.number().min(0).max(0.5).default(0.1),
  /** Brightness multiplied by a uniform random factor in [1 - brightness, 1 + brightness]. */
  brightness: z.number().min(0).max(1).default(0.2),
});

export const FIT_MODES = ['fill', 'cover', 'contain'] as const;

/** What turns one image into one tensor: everything that changes a pixel or a split is here, and in the cache key. */
export const preprocessSpecSchema = z
  .strictObject({
    width: z.int().min(4).max(1024).default(28),
    height: z.int().min(4).max(1024).default(28),
    channels: z.union([z.literal(1), z.literal(3)]).default(1),
    /** `fill` stretches, `cover` crops to the aspect ratio (centred), `contain` letterboxes on `background`. */
    fit: z.enum(FIT_MODES).default('fill'),
    background: z.int().min(0).max(255).default(0),
    normalization: normalizationSchema.prefault({}),
    /**
     * How shards hold pixels: `uint8` as decoded, 4x smaller, normalized as batches are fed to a model; `float32` already
     * normalized.
     */
    storage: z.enum(['uint8', 'float32']).default('uint8'),
    augmentation: augmentationSchema.nullable().default(null),
    /** Fractions of images, chosen by a hash of each image's content, kept for validation and test. */
    validationFraction: z.number().min(0).max(0.5).default(0.1),
    testFraction: z.number().gt(0).max(0.5).default(0.2),
    /**
     * Decompression-bomb guard: images whose header claims more pixels are quarantined without being decoded. Null is
     * the worker's ceiling; a value may lower it, never raise it.
     */
    maxInputPixels: z.int().positive().nullable().default(null),
    /** Files larger than this are quarantined without being read. Null is the worker's ceiling. */
    maxFileBytes: z.int().positive().nullable().default(null),
  })
  .superRefine((spec, ctx) => {
    for (const key of ['mean', 'std'] as const) {
      const n = spec.normalization[key].length;
      if (n !== 1 && n !== spec.channels) {
        ctx.addIssue({ code: 'custom', path: ['normalization', key], message: `needs 1 or ${spec.channels} values (one per channel), got ${n}` });
      }
    }
  });

export const batchingSchema = z.strictObject({
  /** Images per preprocessing activity; null picks one that keeps a batch's tensors near 64 MiB (at most 2,000 images). */
  size: z.int().min(1).max(100_000).nullable().default(null),
  /** Preprocessing activities in flight at once. */
  parallelism: z.int().min(1).max(256).default(8),
});

export type DatasetSource = z.output<typeof datasetSourceSchema>;
export type PreprocessSpec = z.output<typeof preprocessSpecSchema>;
export type Augmentation = z.output<typeof augmentationSchema>;
export type Batching = z.output<typeof batchingSchema>;

/** Bytes of shard rows one image can take in a batch, its augmented copies included. */
export function tensorBytesPerImage(spec: PreprocessSpec): number {
  return spec.width * spec.height * spec.channels * (spec.storage === 'uint8' ? 1 : 4) * (1 + (spec.augmentation?.copies ?? 0));
}

/**
 * The batch size `batching.size: null` stands for: about 64 MiB of shard rows per batch, 16 to 2,000 images,
 * and never more than `maxBatchTensorBytes` (a worker's ceiling) holds.
 */
export function batchSizeFor(spec: PreprocessSpec, batching: Batching, maxBatchTensorBytes = Infinity): number {
  if (batching.size !== null) return batching.size;
  const perImage = tensorBytesPerImage(spec);
  const target = Math.max(16, Math.min(2000, Math.floor((64 * 1024 * 1024) / perImage)));
  return Math.max(1, Math.min(target, Math.floor(maxBatchTensorBytes / perImage)));
}
