import { z } from 'zod';
import { modelNameSchema } from './train-model';

export const SWEEP_METRICS = {
  validationAccuracy: 'max',
  validationLoss: 'min',
  testAccuracy: 'max',
  testLoss: 'min',
} as const;

/** Input of the `hyperparameterSweep` workflow. Each trial is a `trainModel` child workflow. */
export const hyperparameterSweepInputSchema = z.strictObject({
  modelName: modelNameSchema.default('sweep'),
  manifestUri: z.string().startsWith('file://', 'must be a file:// URI of a dataset manifest'),
  /** The `model` and `training` every trial starts from (trainModel's fields and defaults). */
  base: z.strictObject({ model: z.record(z.string(), z.unknown()).default({}), training: z.record(z.string(), z.unknown()).default({}) }).prefault({}),
  /** Dotted paths under `model.` or `training.`, each with the values to try. */
  space: z
    .record(z.string().regex(/^(model|training)\.[A-Za-z]+(\.[A-Za-z]+)*$/, 'keys are paths such as "training.learningRate" or "model.dropout"'), z.array(z.unknown()).min(1).max(100))
    .refine((space) => Object.keys(space).length > 0, 'declare at least one hyperparameter'),
  search: z.enum(['grid', 'random']).default('grid'),
  /** Random search: how many trials. Grid search: at most this many of the combinations (all by default). */
  trials: z.int().min(1).max(1000).optional(),
  seed: z.int().min(0).default(0),
  /** Trials running at once. */
  parallelism: z.int().min(1).max(100).default(2),
  metric: z.enum(Object.keys(SWEEP_METRICS) as [keyof typeof SWEEP_METRICS]).default('validationAccuracy'),
});

export type HyperparameterSweepInput = z.input<typeof hyperparameterSweepInputSchema>;
