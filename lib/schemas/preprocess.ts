import { z } from 'zod';

export const datasetSourceSchema = z.strictObject({
  /** `builtin:mnist-digits`, or a folder (one sub-folder per class) under the datasets root. */
  source: z.string().min(1).default('builtin:mnist-digits'),
  /** At most this many images, taken round-robin across classes so every class is represented. */
  maxImages: z.int().positive().default(3000),
});

export const preprocessSpecSchema = z.strictObject({
  width: z.int().min(4).max(1024).default(28),
  height: z.int().min(4).max(1024).default(28),
  channels: z.union([z.literal(1), z.literal(3)]).default(1),
  /** Fractions of images, chosen by a hash of each image's content, kept for validation and test. */
  validationFraction: z.number().min(0).max(0.5).default(0.1),
  testFraction: z.number().gt(0).max(0.5).default(0.2),
  /** Images per preprocessing activity and per shard. */
  shardSize: z.int().min(1).max(100_000).default(1000),
});

export type DatasetSource = z.output<typeof datasetSourceSchema>;
export type PreprocessSpec = z.output<typeof preprocessSpecSchema>;
