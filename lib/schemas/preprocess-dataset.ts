import { z } from 'zod';
import { batchingSchema, datasetSourceSchema, preprocessSpecSchema } from './preprocess';

/** Input of the `preprocessDataset` workflow: every field has a default, so `{}` preprocesses the built-in digits. */
export const preprocessDatasetInputSchema = z.strictObject({
  dataset: datasetSourceSchema.prefault({}),
  preprocess: preprocessSpecSchema.prefault({}),
  batching: batchingSchema.prefault({}),
});

export type PreprocessDatasetInput = z.input<typeof preprocessDatasetInputSchema>;
export type PreprocessDatasetConfig = z.output<typeof preprocessDatasetInputSchema>;
