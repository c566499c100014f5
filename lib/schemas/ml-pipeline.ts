import { z } from 'zod';
import { modelSpecSchema, trainingSpecSchema } from './model';
import { modelNameSchema } from './train-model';
import { datasetSourceSchema, preprocessSpecSchema } from './preprocess';

/** Input of the `mlPipeline` workflow: every field has a default, so `{}` runs the whole pipeline. */
export const mlPipelineInputSchema = z.strictObject({
  /** Name the trained model is known by in metrics and search attributes. */
  modelName: modelNameSchema.default('mnist-digits'),
  dataset: datasetSourceSchema.prefault({}),
  preprocess: preprocessSpecSchema.prefault({}),
  model: modelSpecSchema.prefault({}),
  training: trainingSpecSchema.prefault({}),
});

export type MlPipelineInput = z.input<typeof mlPipelineInputSchema>;
export type MlPipelineConfig = z.output<typeof mlPipelineInputSchema>;
