import { z } from 'zod';
import { modelSpecSchema, trainingSpecSchema } from './model';
import { modelNameSchema } from './train-model';
import { artifactUriSchema } from './artifact-uri';

/** Partitions one run may train; aggregation past this wants a tree of aggregators (see the README). */
export const MAX_WORKERS = 1024;

/** Rounds one run of the workflow takes before it continues as new, keeping each run's history small. */
export const MAX_ROUNDS_PER_RUN = 100;

const seedSchema = z.int().min(0).max(2 ** 31 - 1);

/** Input of the `distributedTrain` workflow: data-parallel training of one model over `numWorkers` partitions. */
export const distributedTrainInputSchema = z
  .strictObject({
    modelName: modelNameSchema.default('distributed'),
    /** URI of a dataset manifest written by preprocessing; its train split is partitioned, its validation split scores every round. */
    manifestUri: artifactUriSchema('a dataset manifest'),
    model: modelSpecSchema.prefault({}),
    /** As trainModel's; `epochs` and `earlyStopping` are not used: each round trains `localEpochs` (or `localSteps`). */
    training: trainingSpecSchema.prefault({}),
    /** Partitions of the training images, each trained by one `ml-train` activity at a time. */
    numWorkers: z.int().min(1).max(MAX_WORKERS).default(4),
    partition: z
      .strictObject({
        strategy: z.enum(['iid', 'by-class', 'dirichlet']).default('iid'),
        /** Concentration of the Dirichlet class mix per partition: small is skewed, large is close to IID. */
        alpha: z.number().positive().max(1e6).default(0.5),
        /** Left out, `seed`. */
        seed: seedSchema.optional(),
      })
      .prefault({}),
    mode: z.enum(['sync', 'async']).default('sync'),
    /** Most rounds; fewer when `target` is reached. */
    rounds: z.int().min(1).max(100_000).default(10),
    /** Epochs over its partition each local training run takes. */
    localEpochs: z.int().min(1).max(1000).default(1),
    /** Optimizer steps each local training run takes instead of `localEpochs`. */
    localSteps: z.int().min(1).max(1_000_000).nullable().default(null),
    sync: z
      .strictObject({
        /** Share of the partitions a round needs once `roundTimeoutSeconds` has passed. */
        quorum: z.number().gt(0, 'must be above 0').max(1, 'must be at most 1').default(1),
        /** Past this, a round with its quorum closes and cancels its stragglers; null waits for every partition. */
        roundTimeoutSeconds: z.number().positive().max(86_400).nullable().default(null),
      })
      .prefault({}),
    async: z
      .strictObject({
        /** Updates trained from a global model more than this many merges old are dropped. */
        maxStaleness: z.int().min(0, 'must be 0 or more').default(8),
        mixing: z.number().gt(0).max(1).default(0.5),
        stalenessExponent: z.number().min(0, 'must be 0 or more').max(10).default(0.5),
      })
      .prefault({}),
    target: z
      .strictObject({
        /** Stop after the first round whose global model scores at least this on the validation split. */
        validationAccuracy: z.number().gt(0).max(1).nullable().default(null),
      })
      .prefault({}),
    /** Seeds the initial weights (the same in every partition), the per-round shuffling and, unless `partition.seed` is set, the partitioning. */
    seed: seedSchema.default(42),
    /** Rounds per run of the workflow; past them (or when Temporal suggests it) it continues as new. */
    roundsPerRun: z.int().min(1).max(MAX_ROUNDS_PER_RUN).default(MAX_ROUNDS_PER_RUN),
  });

export type DistributedTrainInput = z.input<typeof distributedTrainInputSchema>;
export type DistributedTrainConfig = z.output<typeof distributedTrainInputSchema>;

/** What mlPipeline's `distributed` field takes: distributedTrain's input without the fields the pipeline fills in itself. */
export const distributedOptionsSchema = distributedTrainInputSchema.omit({ modelName: true, manifestUri: true, model: true, training: true });
