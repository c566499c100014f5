import { z } from 'zod';

const kernelSize = z.int().min(1).max(11);

export const modelSpecSchema = z.strictObject({
  architecture: z.enum(['mlp', 'cnn']).default('cnn'),
  /** Convolution filters per block (CNN only); each block is `convsPerBlock` convolutions, then a 2x2 max-pool. */
  filters: z.array(z.int().positive().max(1024)).max(6).default([16, 32]),
  /** One kernel size for every block, or one per block. */
  kernelSize: z.union([kernelSize, z.array(kernelSize).min(1).max(6)]).default(3),
  convsPerBlock: z.int().min(1).max(4).default(1),
  /** Dense layer widths: the MLP's hidden layers, or the CNN's layers after the convolutions. */
  hiddenUnits: z.array(z.int().positive().max(8192)).max(8).default([128]),
  dropout: z.number().min(0).max(0.9).default(0.2),
  /** Batch normalization after every convolution and dense hidden layer, before its activation. */
  batchNorm: z.boolean().default(false),
});

export const learningRateScheduleSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('constant') }),
  /** Multiply the rate by `factor` every `everyEpochs` epochs. */
  z.strictObject({ type: z.literal('step'), everyEpochs: z.int().min(1).default(2), factor: z.number().gt(0).max(1).default(0.5) }),
  /** Multiply the rate by `decay` each epoch. */
  z.strictObject({ type: z.literal('exponential'), decay: z.number().gt(0).max(1).default(0.9) }),
  /** Cosine from the initial rate down to `minLearningRate` over all epochs. */
  z.strictObject({ type: z.literal('cosine'), minLearningRate: z.number().min(0).default(0) }),
]);

export const trainingSpecSchema = z.strictObject({
  epochs: z.int().min(1).max(1000).default(5),
  batchSize: z.int().min(1).max(8192).default(64),
  learningRate: z.number().positive().max(10).default(0.001),
  learningRateSchedule: learningRateScheduleSchema.prefault({ type: 'constant' }),
  /** Stop when the monitored validation figure has not improved by `minDelta` for `patience` epochs, keeping the best weights. */
  earlyStopping: z
    .strictObject({
      monitor: z.enum(['validationLoss', 'validationAccuracy']).default('validationLoss'),
      patience: z.int().min(1).max(100).default(3),
      minDelta: z.number().min(0).default(0.001),
    })
    .nullable()
    .prefault({}),
  /** Seed of weight initialisation and per-epoch shuffling. */
  seed: z.int().min(0).max(2 ** 31 - 1).default(42),
  /** A checkpoint is written at the end of every epoch and at least this often within one. */
  checkpointEverySeconds: z.number().min(1).max(3600).default(60),
  /**
   * How images reach the model: `memory` loads the splits as tensors, `stream` reads each batch's rows from the shard
   * files, `auto` streams when the memory budget cannot hold the splits. The batches are the same either way.
   */
  dataLoading: z.enum(['auto', 'memory', 'stream']).default('auto'),
  /** Images an epoch shuffles among at a time, in windows of whole shards (see lib/training/batch-order.ts); null: the whole split. */
  shuffleWindow: z.int().positive().nullable().default(null),
  /** Bytes the training process may use: lowers the worker's `TEMPORAL_ML_TRAIN_MEMORY_BYTES`, never raises it. */
  memoryBudgetBytes: z.int().positive().nullable().default(null),
});

export type ModelSpec = z.output<typeof modelSpecSchema>;
export type TrainingSpec = z.output<typeof trainingSpecSchema>;
export type LearningRateSchedule = z.output<typeof learningRateScheduleSchema>;
