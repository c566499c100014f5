import { Context } from '@temporalio/activity';
import { ArtifactPathError, artifactStore } from '../lib/artifacts';
import { ChildTaskError, WarmChildPool, silenceTimeoutFor } from '../lib/child-task';
import { settings } from '../lib/config';
import { InvalidDatasetError } from '../lib/datasets/manifest';
import type { AverageJobInput, AverageProgress, WeightedModel } from '../lib/distributed/average-job';
import { PartitionError, type PartitionSpec } from '../lib/distributed/partition';
import { partitionOnce, type PartitionResult } from '../lib/distributed/partition-dataset';
import type { StoredArtifact } from '../lib/artifacts';
import type { ModelSpec, TrainingSpec } from '../lib/schemas/model';
import type { TrainJobTimings } from '../lib/training/train-job';
import { invalidInput } from '../lib/validate';
import { runTraining } from './training';

export type { DatasetPartition, PartitionedDataset } from '../lib/distributed/partition-dataset';

export interface PartitionDatasetInput {
  manifestUri: string;
  numPartitions: number;
  partition: PartitionSpec;
}

/**
 * Splits a dataset's training images among `numPartitions` partitions, one dataset manifest each, heartbeating after
 * every source shard. The same input gives the same partitions (and, content-addressed, the same URIs); once they
 * are stored, the same input returns them without partitioning again (`cacheHit`).
 */
export async function partitionDataset(input: PartitionDatasetInput): Promise<PartitionResult> {
  const context = Context.current();
  const store = artifactStore();
  try {
    return await partitionOnce(store, input.manifestUri, input.numPartitions, input.partition, (done, total) => {
      context.cancellationSignal.throwIfAborted();
      context.heartbeat({ shards: done, of: total });
    });
  } catch (err) {
    if (err instanceof PartitionError) throw invalidInput(err.field, err.problem);
    if (err instanceof InvalidDatasetError) throw invalidInput('manifestUri', err.message);
    throw err;
  }
}

/**
 * What a partition's optimizer starts each round with: `carry` restores the state (Adam's moments and step count) its
 * previous round ended with, `reset` starts a fresh optimizer on the global weights.
 */
export type OptimizerStatePolicy = 'carry' | 'reset';
export const DEFAULT_OPTIMIZER_STATE: OptimizerStatePolicy = 'reset';

export interface TrainPartitionInput {
  modelName: string;
  round: number;
  partition: number;
  /** The partition's dataset manifest (from partitionDataset). */
  manifestUri: string;
  /** The global model to start from; null builds `model` from `training.seed`, the same weights in every partition. */
  globalModelUri: string | null;
  model: ModelSpec;
  /** Local training: `epochs` of the partition, unless `localSteps` says how many optimizer steps. */
  training: TrainingSpec;
  localSteps: number | null;
  /** The state this partition's previous round returned (with `optimizerState` carry). */
  optimizerStateUri: string | null;
  optimizerState?: OptimizerStatePolicy;
}

export interface TrainPartitionResult {
  modelUri: string;
  /** Training images of the partition: its weight in the average. */
  samples: number;
  /** Mean training loss and accuracy of the last local epoch. */
  loss: number;
  accuracy: number;
  /** The optimizer state to pass to this partition's next round; null unless carried. */
  optimizerStateUri: string | null;
  seconds: number;
  /** Where the training attempt's wall time went (the last attempt's, when there were several). */
  timings: TrainJobTimings;
  resumes: { epoch: number; batch: number }[];
}

/**
 * One partition's local training for one round, through runTraining: in a child process, heartbeating, checkpointing
 * and resuming after a crash like any training job. Returns the trained weights' URI, never the weights.
 */
export async function trainPartition(input: TrainPartitionInput): Promise<TrainPartitionResult> {
  if (input.localSteps !== null && !(Number.isSafeInteger(input.localSteps) && input.localSteps >= 1)) {
    throw invalidInput('localSteps', `must be a positive integer or null, not ${input.localSteps}`);
  }
  const carry = (input.optimizerState ?? DEFAULT_OPTIMIZER_STATE) === 'carry';
  const result = await runTraining({
    modelName: input.modelName,
    manifestUri: input.manifestUri,
    model: input.model,
    // Local training returns its last weights, never an earlier epoch's.
    training: { ...input.training, earlyStopping: null },
    initialModelUri: input.globalModelUri ?? undefined,
    maxSteps: input.localSteps ?? undefined,
    // Each round visits the partition's images in another order; initial weights stay those of training.seed.
    shuffleSeed: input.training.seed + input.round,
    // The workflow scores the global model on the validation split; a partition's own model is not worth scoring.
    validate: false,
    // A partition trains again every round: its process and data stay loaded between rounds.
    warmProcess: true,
    extension: carry ? { kind: 'optimizer-state', restoreFrom: input.optimizerStateUri } : undefined,
  });
  const last = result.history.at(-1)!;
  return {
    modelUri: result.modelUri,
    samples: result.trainSamples,
    loss: last.loss,
    accuracy: last.accuracy,
    optimizerStateUri: carry ? (result.extension!.optimizerStateUri as string) : null,
    seconds: result.trainingSeconds,
    timings: result.timings,
    resumes: result.resumes,
  };
}

export interface AggregateWeightsInput {
  updates: { modelUri: string; samples: number }[];
}

export interface StoredModel {
  modelUri: string;
  seconds: number;
}

/** The sample-weighted average of the partitions' models (FedAvg, McMahan et al. 2017). */
export async function aggregateWeights(input: AggregateWeightsInput): Promise<StoredModel> {
  if (input.updates.length === 0) throw invalidInput('updates', 'must name at least one model');
  const bad = input.updates.findIndex((u) => !(Number.isSafeInteger(u.samples) && u.samples > 0));
  if (bad !== -1) throw invalidInput(`updates.${bad}.samples`, `must be a positive integer, not ${input.updates[bad]!.samples}`);
  const total = input.updates.reduce((sum, u) => sum + u.samples, 0);
  return averageModels(input.updates.map((u) => ({ modelUri: u.modelUri, weight: u.samples / total })), 'updates');
}

export interface MergeUpdateInput {
  globalModelUri: string;
  updateModelUri: string;
  /** The update's share: `w <- (1 - weight) w + weight w_k` (see lib/distributed/staleness.ts). */
  weight: number;
}

/** One asynchronous merge of a partition's model into the global one. */
export async function mergeUpdate(input: MergeUpdateInput): Promise<StoredModel> {
  if (!(input.weight >= 0 && input.weight <= 1)) throw invalidInput('weight', `must be from 0 to 1, not ${input.weight}`);
  return averageModels(
    [
      { modelUri: input.globalModelUri, weight: 1 - input.weight },
      { modelUri: input.updateModelUri, weight: input.weight },
    ],
    'updateModelUri',
  );
}

const averageJobModule = require.resolve('../lib/distributed/average-job');
let warmAveragers: WarmChildPool | undefined;

/**
 * Averages stored models in this worker's warm averaging process (the arithmetic is synchronous; a process per round
 * cost more than averaging a small model), heartbeating its progress; cancellation kills it, and a killed average
 * leaves only a scratch folder, never a half-written model where one is read.
 */
async function averageModels(models: WeightedModel[], modelsField: string): Promise<StoredModel> {
  const context = Context.current();
  const started = performance.now();
  try {
    warmAveragers ??= new WarmChildPool(averageJobModule, { maxIdle: 1, idleSeconds: settings().warmChildren.idleSeconds });
    const stored = await warmAveragers.run<AverageJobInput, AverageProgress, StoredArtifact>(
      { artifacts: await artifactStore().describeForChild(), models },
      { signal: context.cancellationSignal, onProgress: (progress) => context.heartbeat(progress), silenceTimeoutMs: silenceTimeoutFor(context.info.heartbeatTimeoutMs) },
    );
    return { modelUri: stored.uri, seconds: (performance.now() - started) / 1000 };
  } catch (err) {
    if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
    if (err instanceof ChildTaskError && (err.name === 'IncompatibleModelsError' || err.name === ArtifactPathError.name)) throw invalidInput(modelsField, err.message);
    throw err;
  }
}
