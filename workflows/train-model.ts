import { defineQuery, defineSignal, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { EvaluationSummary } from '../activities/evaluation';
import { trainModelInputSchema, type TrainModelInput } from '../lib/schemas/train-model';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import type { EpochRecord } from '../lib/training/checkpoint';
import type { CheckpointRef, TrainProgress } from '../lib/training/train-job';
import { parseWorkflowInput } from '../lib/validate';

const { runTraining } = proxyActivities<typeof activities>({
  taskQueue: 'ml-train',
  startToCloseTimeout: '24 hours',
  // A dead worker is noticed within this; the retry resumes from the last heartbeated checkpoint.
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
});

const { evaluateModel } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5 },
});

export interface TrainModelProgress {
  stage: 'training' | 'evaluating' | 'done';
  epoch: number;
  epochs: number;
  batch: number;
  batchesPerEpoch: number;
  loss: number | null;
  accuracy: number | null;
  samplesPerSecond: number;
  etaSeconds: number | null;
  checkpoint: CheckpointRef | null;
  /** Positions attempts resumed from after a worker died or the activity was retried. */
  resumedFrom: { epoch: number; batch: number }[];
  history: EpochRecord[];
}

export interface TrainModelResult {
  modelName: string;
  modelUri: string;
  backend: string;
  parameterCount: number;
  modelBytes: number;
  trainSamples: number;
  history: EpochRecord[];
  /** The epoch whose weights `modelUri` holds: the best one when early stopping kept it, else the last. */
  bestEpoch: EpochRecord;
  stoppedEarly: boolean;
  resumedFrom: { epoch: number; batch: number }[];
  trainingSamplesPerSecond: number;
  evaluation: EvaluationSummary;
}

export const trainingProgressSignal = defineSignal<[TrainProgress]>('trainingProgress');
export const trainingProgressQuery = defineQuery<TrainModelProgress>('progress');

/** Trains one model on one worker from a preprocessed dataset, resumable from checkpoints, then evaluates it. */
export async function trainModel(input: TrainModelInput): Promise<TrainModelResult> {
  const progress: TrainModelProgress = {
    stage: 'training',
    epoch: 0,
    epochs: 0,
    batch: 0,
    batchesPerEpoch: 0,
    loss: null,
    accuracy: null,
    samplesPerSecond: 0,
    etaSeconds: null,
    checkpoint: null,
    resumedFrom: [],
    history: [],
  };
  setHandler(trainingProgressQuery, () => progress);
  const config = parseWorkflowInput('trainModel', trainModelInputSchema, input);
  setHandler(trainingProgressSignal, (update) => {
    Object.assign(progress, {
      epoch: update.epoch,
      epochs: update.epochs,
      batch: update.batch,
      batchesPerEpoch: update.batchesPerEpoch,
      loss: Number.isFinite(update.loss) ? update.loss : progress.loss,
      accuracy: Number.isFinite(update.accuracy) ? update.accuracy : progress.accuracy,
      samplesPerSecond: update.samplesPerSecond,
      checkpoint: update.checkpoint ?? progress.checkpoint,
    });
    const remainingBatches = (update.epochs - update.epoch) * update.batchesPerEpoch + (update.batchesPerEpoch - update.batch);
    progress.etaSeconds = update.samplesPerSecond > 0 ? (remainingBatches * config.training.batchSize) / update.samplesPerSecond : null;
    if (update.resumedFrom && !progress.resumedFrom.some((r) => r.epoch === update.resumedFrom!.epoch && r.batch === update.resumedFrom!.batch)) {
      progress.resumedFrom.push(update.resumedFrom);
    }
    if (update.finishedEpoch && !progress.history.some((e) => e.epoch === update.finishedEpoch!.epoch)) progress.history.push(update.finishedEpoch);
  });
  upsertSearchAttributes([
    { key: ML_MODEL, value: config.modelName },
    { key: ML_STAGE, value: 'training' },
  ]);

  const trained = await runTraining({ modelName: config.modelName, manifestUri: config.manifestUri, model: config.model, training: config.training });
  progress.stage = 'evaluating';
  progress.history = trained.history;
  progress.resumedFrom = trained.resumes;
  upsertSearchAttributes([{ key: ML_STAGE, value: 'evaluating' }]);
  const evaluation = await evaluateModel({ modelName: config.modelName, modelUri: trained.modelUri, manifestUri: config.manifestUri });
  progress.stage = 'done';
  progress.etaSeconds = 0;
  upsertSearchAttributes([{ key: ML_STAGE, value: 'done' }]);

  return {
    modelName: config.modelName,
    modelUri: trained.modelUri,
    backend: trained.backend,
    parameterCount: trained.parameterCount,
    modelBytes: trained.modelBytes,
    trainSamples: trained.trainSamples,
    history: trained.history,
    bestEpoch: trained.bestEpoch,
    stoppedEarly: trained.stoppedEarly,
    resumedFrom: trained.resumes,
    trainingSamplesPerSecond: trained.samplesPerSecond,
    evaluation,
  };
}
