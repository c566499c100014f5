import { proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { EvaluationSummary } from '../activities/evaluation';
import type { ReportLocation } from '../activities/report';
import { trainModelInputSchema, type TrainModelInput } from '../lib/schemas/train-model';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import type { EpochRecord } from '../lib/training/checkpoint';
import { parseWorkflowInput } from '../lib/validate';
import { trainingProgressQuery } from './definitions';
import { writeReport } from './report';

const { runTraining } = proxyActivities<typeof activities>({
  taskQueue: 'ml-train',
  startToCloseTimeout: '24 hours',
  // The activity heartbeats only when training progresses (see PROGRESS_INTERVAL_MS in lib/training/train-job.ts):
  // a dead worker or a hung training process is noticed within this, and the retry resumes from the last checkpoint.
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
});

const { evaluateModel } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5 },
});

/**
 * What the workflow itself knows. The live position (epoch, batch, loss, checkpoint) changes too often for history:
 * it travels in the training activity's heartbeat details, which `describe()` returns while it runs.
 */
export interface TrainModelProgress {
  stage: 'training' | 'evaluating' | 'done';
  epochs: number;
  /** Filled in once training has finished. */
  history: EpochRecord[];
  bestEpoch: EpochRecord | null;
  /** Positions attempts resumed from after a worker died or the activity was retried. */
  resumedFrom: { epoch: number; batch: number }[];
}

export interface TrainModelResult extends ReportLocation {
  modelName: string;
  modelUri: string;
  backend: string;
  parameterCount: number;
  modelBytes: number;
  trainSamples: number;
  history: EpochRecord[];
  /** The epoch whose weights `modelUri` holds: the best one under early stopping, else the last. */
  bestEpoch: EpochRecord;
  stoppedEarly: boolean;
  resumedFrom: { epoch: number; batch: number }[];
  /** The last checkpoint: `resumeFrom` continues training from it. */
  checkpointUri: string;
  trainingSamplesPerSecond: number;
  /** How the last training attempt fed its images (`memory` or `stream`), and the peak resident memory of its process. */
  dataLoading: string;
  trainingPeakRssBytes: number;
  evaluation: EvaluationSummary;
}

/** Trains one model on one worker from a preprocessed dataset, resumable from checkpoints, then evaluates it. */
export async function trainModel(input: TrainModelInput): Promise<TrainModelResult> {
  const progress: TrainModelProgress = { stage: 'training', epochs: 0, history: [], bestEpoch: null, resumedFrom: [] };
  setHandler(trainingProgressQuery, () => progress);
  const config = parseWorkflowInput('trainModel', trainModelInputSchema, input);
  progress.epochs = config.training.epochs;
  upsertSearchAttributes([
    { key: ML_MODEL, value: config.modelName },
    { key: ML_STAGE, value: 'training' },
  ]);

  const trained = await runTraining({
    modelName: config.modelName,
    manifestUri: config.manifestUri,
    model: config.model,
    training: config.training,
    resumeFrom: config.resumeFrom,
    untilEpoch: config.untilEpoch,
  });
  Object.assign(progress, { stage: 'evaluating', history: trained.history, bestEpoch: trained.bestEpoch, resumedFrom: trained.resumes });
  upsertSearchAttributes([{ key: ML_STAGE, value: 'evaluating' }]);
  const evaluation = await evaluateModel({ modelName: config.modelName, modelUri: trained.modelUri, manifestUri: config.manifestUri });
  const report = await writeReport({
    title: `trainModel ${workflowInfo().workflowId}: ${config.modelName}`,
    training: { history: trained.history, bestEpoch: trained.bestEpoch.epoch },
    evaluationReportUri: evaluation.reportUri,
  });
  progress.stage = 'done';
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
    checkpointUri: trained.checkpointUri,
    trainingSamplesPerSecond: trained.samplesPerSecond,
    dataLoading: trained.dataLoading,
    trainingPeakRssBytes: trained.peakRssBytes,
    evaluation,
    ...report,
  };
}
