import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { artifactStore } from '../lib/artifacts';
import { settings } from '../lib/config';
import { ChildTaskError, runChildTask } from '../lib/child-task';
import { checkpointBytesWritten, epochDuration, latestTrainingAccuracy, latestTrainingLoss, trainingSamplesPerSecond } from '../lib/metrics';
import type { ModelSpec, TrainingSpec } from '../lib/schemas/model';
import type { TrainJobInput, TrainJobResult, TrainProgress } from '../lib/training/train-job';
import { invalidInput } from '../lib/validate';
import { trainingProgressSignal } from '../workflows/train-model';

export interface RunTrainingInput {
  modelName: string;
  manifestUri: string;
  model: ModelSpec;
  training: TrainingSpec;
}

const HEARTBEAT_INTERVAL_MS = 5_000;
const SIGNAL_INTERVAL_MS = 2_000;
const trainJobModule = require.resolve('../lib/training/train-job');

/**
 * Trains a model in a child process. Progress is heartbeated (with the latest checkpoint, so a retry on any worker
 * resumes from it) and signalled to the workflow; cancellation stops the child at the next batch, after a checkpoint.
 */
export async function runTraining(input: RunTrainingInput): Promise<TrainJobResult> {
  const context = Context.current();
  if (!(await artifactStore().exists(input.manifestUri).catch(() => false))) {
    throw invalidInput('manifestUri', `no dataset manifest at ${input.manifestUri}`);
  }
  const previous = context.info.heartbeatDetails as TrainProgress | undefined;
  let latest = previous;
  let lastSignalAt = 0;
  let lastCheckpoint = previous?.checkpoint?.uri;
  const execution = context.info.workflowExecution;
  const workflow = execution ? context.client.workflow.getHandle(execution.workflowId, execution.runId) : undefined;
  const keepAlive = setInterval(() => context.heartbeat(latest), HEARTBEAT_INTERVAL_MS);
  const onProgress = (progress: TrainProgress) => {
    latest = progress;
    context.heartbeat(progress);
    recordProgressMetrics(input.modelName, progress, progress.checkpoint?.uri !== lastCheckpoint);
    lastCheckpoint = progress.checkpoint?.uri;
    const now = Date.now();
    if (progress.finishedEpoch || now - lastSignalAt >= SIGNAL_INTERVAL_MS) {
      lastSignalAt = now;
      // Progress is informative: a lost signal must never fail the training.
      workflow?.signal(trainingProgressSignal, progress).catch(() => undefined);
    }
  };
  try {
    const result = await runChildTask<TrainJobInput, TrainProgress, TrainJobResult>(
      trainJobModule,
      {
        artifactRoot: settings().artifactRoot,
        manifestUri: input.manifestUri,
        model: input.model,
        training: input.training,
        resumeFrom: previous?.checkpoint?.uri,
      },
      { signal: context.cancellationSignal, onProgress, stopGraceMs: 30_000 },
    );
    trainingSamplesPerSecond.set({ model: input.modelName, backend: result.backend }, result.samplesPerSecond);
    return result;
  } catch (err) {
    // Cancelled: the child checkpointed and stopped; report the cancellation, not the way the child ended.
    if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
    if (err instanceof ChildTaskError && err.name === 'TrainingDivergedError') {
      throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
    }
    throw err;
  } finally {
    clearInterval(keepAlive);
  }
}

function recordProgressMetrics(modelName: string, progress: TrainProgress, newCheckpoint: boolean): void {
  const labels = { model: modelName };
  if (Number.isFinite(progress.loss)) latestTrainingLoss.set(labels, progress.loss);
  if (Number.isFinite(progress.accuracy)) latestTrainingAccuracy.set(labels, progress.accuracy);
  if (progress.finishedEpoch) epochDuration.observe(labels, progress.finishedEpoch.seconds);
  if (newCheckpoint && progress.checkpoint?.bytes) checkpointBytesWritten.inc(labels, progress.checkpoint.bytes);
}
