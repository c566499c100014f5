import { z } from 'zod';
import { compressionStageSchema } from './compress-model';
import { distributedOptionsSchema } from './distributed-train';
import { modelSpecSchema, trainingSpecSchema } from './model';
import { batchingSchema, datasetSourceSchema, preprocessSpecSchema } from './preprocess';
import { modelNameSchema } from './train-model';

export const registryOptionsSchema = z.strictObject({
  /** `if-better`: champion when it beats the champion on the same test split by more than `minImprovement`; `always`: champion regardless (recorded as forced); `never`: registered only. */
  promote: z.enum(['if-better', 'never', 'always']).default('if-better'),
  /** A fraction of test accuracy: 0.01 asks for one point more than the champion. */
  minImprovement: z.number().min(0).lt(1).default(0),
});

/** Input of the `mlPipeline` workflow: every field has a default, so `{}` runs the whole pipeline. */
export const mlPipelineInputSchema = z.strictObject({
  /** Name the trained model is known by in metrics and search attributes. */
  modelName: modelNameSchema.default('mnist-digits'),
  /** Left out, 3,000 of the built-in digits: a pipeline that finishes in seconds. */
  dataset: datasetSourceSchema.default({ source: { format: 'builtin', name: 'mnist-digits' }, maxImages: 3000 }),
  preprocess: preprocessSpecSchema.prefault({}),
  batching: batchingSchema.prefault({}),
  model: modelSpecSchema.prefault({}),
  training: trainingSpecSchema.prefault({}),
  /** Variants of the trained model to try after training (quick ones, no fine-tuning, by default); `null` skips the stage. */
  compression: compressionStageSchema.nullable().prefault({}),
  /** Train with distributedTrain instead of trainModel: its input without the manifest, model name, model and training, which are the pipeline's. */
  distributed: distributedOptionsSchema.optional(),
  /** After training, the model is registered as the next version of `modelName` in its modelRegistry, which promotes it per `promote`. */
  registry: registryOptionsSchema.prefault({}),
  /**
   * `if-changed`: when the registry's champion was trained on the same dataset fingerprint with the same configuration,
   * end as `unchanged` without training. Left out: `if-changed` for runs a Temporal Schedule starts, `always` otherwise.
   */
  retrain: z.enum(['if-changed', 'always']).optional(),
});

export type MlPipelineInput = z.input<typeof mlPipelineInputSchema>;
export type MlPipelineConfig = z.output<typeof mlPipelineInputSchema>;
