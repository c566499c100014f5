import { z } from 'zod';
import { modelNameSchema } from './train-model';
import { artifactUriSchema } from './artifact-uri';

/** Figures a sweep can rank trials by, and which way is better. Test-set figures are not among them on purpose. */
export const SWEEP_METRICS = {
  validationAccuracy: 'max',
  validationLoss: 'min',
} as const;
export type SweepMetric = keyof typeof SWEEP_METRICS;

const metricNames = Object.keys(SWEEP_METRICS) as [SweepMetric, ...SweepMetric[]];

/** Trials one run of the workflow starts before it continues as new, keeping each run's history small. */
export const MAX_TRIALS_PER_RUN = 200;

/** Asynchronous successive halving (`search: "asha"`): rungs at `gracePeriod * reductionFactor^k` epochs, up to `maxEpochs`. */
export const ashaSettingsSchema = z
  .strictObject({
    maxEpochs: z.int().min(1).max(1000).default(9),
    gracePeriod: z.int().min(1).max(1000).default(1),
    reductionFactor: z.int().min(2).max(100).default(3),
    /** How trial points are drawn: the grid's combinations in order (the first `trials` of them), or `trials` random points from `seed`. */
    sampling: z.enum(['grid', 'random']).default('grid'),
  })
  .refine((asha) => asha.gracePeriod <= asha.maxEpochs, { path: ['gracePeriod'], message: 'must be at most maxEpochs' });

/** Input of the `hyperparameterSweep` workflow. Each trial is a `trainModel` child workflow. */
export const hyperparameterSweepInputSchema = z.strictObject({
  modelName: modelNameSchema.default('sweep'),
  manifestUri: artifactUriSchema('a dataset manifest'),
  /** The `model` and `training` every trial starts from (trainModel's fields and defaults). */
  base: z.strictObject({ model: z.record(z.string(), z.unknown()).default({}), training: z.record(z.string(), z.unknown()).default({}) }).prefault({}),
  /** Dotted paths under `model.` or `training.`, each with the values to try. */
  space: z
    .record(z.string().regex(/^(model|training)\.[A-Za-z]+(\.[A-Za-z]+)*$/, 'keys are paths such as "training.learningRate" or "model.dropout"'), z.array(z.unknown()).min(1).max(100))
    .refine((space) => Object.keys(space).length > 0, 'declare at least one hyperparameter'),
  search: z.enum(['grid', 'random', 'asha']).default('grid'),
  /** `search: "asha"` only. */
  asha: ashaSettingsSchema.optional(),
  /** Random search: how many trials. Grid search: at most this many of the combinations (all by default). The worker's ceiling applies. */
  trials: z.int().min(1).optional(),
  seed: z.int().min(0).default(0),
  /** Trials running at once. */
  parallelism: z.int().min(1).max(100).default(2),
  /** Trials per run of the workflow; past them it continues as new. */
  trialsPerRun: z.int().min(1).max(MAX_TRIALS_PER_RUN).default(MAX_TRIALS_PER_RUN),
  metric: z
    .enum(metricNames, {
      error: (issue) =>
        typeof issue.input === 'string' && issue.input.startsWith('test')
          ? `${issue.input} is measured on the test set, and choosing on it leaks the test set into the choice; use ${metricNames.join(' or ')}`
          : `use ${metricNames.join(' or ')}`,
    })
    .default('validationAccuracy'),
}).superRefine((input, context) => {
  if (input.search !== 'asha') {
    if (input.asha) context.addIssue({ code: 'custom', path: ['asha'], message: 'applies to search "asha" only' });
    return;
  }
  // Each rung's budget is the trial's epoch count; its training runs as if for maxEpochs (learning-rate schedules).
  const epochsAt = 'training.epochs' in input.space ? ['space', 'training.epochs'] : 'epochs' in input.base.training ? ['base', 'training', 'epochs'] : null;
  if (epochsAt) context.addIssue({ code: 'custom', path: epochsAt, message: 'ASHA decides how long each trial trains, up to asha.maxEpochs; leave training.epochs out' });
});

export type HyperparameterSweepInput = z.input<typeof hyperparameterSweepInputSchema>;
export type HyperparameterSweepConfig = z.output<typeof hyperparameterSweepInputSchema>;
