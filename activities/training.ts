import { artifactStore } from '../lib/artifacts';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { MEMORY_BUDGET_VARIABLE, settings, tensorflowThreadsEnv } from '../lib/config';
import { ChildTaskError, WarmChildPool, runChildTask, silenceTimeoutFor } from '../lib/child-task';
import { checkpointBytesWritten, epochDuration, latestTrainingAccuracy, latestTrainingLoss, trainingLastProgress, trainingSamplesPerSecond } from '../lib/metrics';
import type { ModelSpec, TrainingSpec } from '../lib/schemas/model';
import type { TrainingExtensionSpec } from '../lib/training/extension';
import type { TrainJobInput, TrainJobResult, TrainProgress } from '../lib/training/train-job';
import { invalidInput } from '../lib/validate';

export interface RunTrainingInput {
  modelName: string;
  manifestUri: string;
  model: ModelSpec;
  training: TrainingSpec;
  /** Start from this stored layers model instead of building `model` afresh (fine-tuning). */
  initialModelUri?: string;
  extension?: TrainingExtensionSpec;
  /** Stop after this many optimizer steps (see TrainJobInput). */
  maxSteps?: number;
  /** Seed of the batch order, when it should differ from `training.seed`. */
  shuffleSeed?: number;
  /** A checkpoint to continue from (see TrainJobInput). */
  resumeFrom?: string;
  untilEpoch?: number;
  /** Score the validation split after each epoch (default true). */
  validate?: boolean;
  /**
   * Train in this worker's warm training process (see WarmChildPool), which keeps TensorFlow loaded and the
   * dataset's splits cached for the next job, instead of a process of its own: for many short jobs on the same data.
   */
  warmProcess?: boolean;
}

/** Crashes of the training child (no result: a signal, an exit, the OOM killer) tolerated before the activity gives up. */
export const MAX_CHILD_CRASHES = 3;
const trainJobModule = require.resolve('../lib/training/train-job');
let warmTrainers: WarmChildPool | undefined;

/** This worker's warm training processes: as many as it runs training activities at once. */
function warmTrainingProcesses(): WarmChildPool {
  const { training, warmChildren } = settings();
  warmTrainers ??= new WarmChildPool(trainJobModule, { env: tensorflowThreadsEnv(training), maxIdle: training.slots, idleSeconds: warmChildren.idleSeconds });
  return warmTrainers;
}

/**
 * Trains a model in a child process. The activity heartbeats the child's progress reports, and only those: a child
 * that hangs stops the heartbeats, so Temporal times the attempt out and retries it. Heartbeat details carry the
 * latest checkpoint (a retry on any worker resumes from it) and the live position that clients read with describe().
 * A crashed child is restarted from the latest checkpoint, up to MAX_CHILD_CRASHES times; cancellation stops the
 * child at the next batch, after a checkpoint.
 */
export async function runTraining(input: RunTrainingInput): Promise<TrainJobResult> {
  checkMemoryBudget(input.training.memoryBudgetBytes);
  const context = Context.current();
  let latest = context.info.heartbeatDetails as TrainProgress | undefined;
  const progressLabels = {
    activity_type: context.info.activityType,
    model: input.modelName,
    workflow_id: context.info.workflowExecution?.workflowId ?? '',
    activity_id: context.info.activityId,
  };
  trainingLastProgress.setToCurrentTime(progressLabels);
  const onProgress = (progress: TrainProgress) => {
    trainingLastProgress.setToCurrentTime(progressLabels);
    recordProgressMetrics(input.modelName, progress, progress.checkpoint?.uri !== latest?.checkpoint?.uri);
    latest = progress;
    context.heartbeat(progress);
  };
  const crashes: string[] = [];
  try {
    for (;;) {
      try {
        const job: TrainJobInput = {
          artifacts: await artifactStore().describeForChild(),
          manifestUri: input.manifestUri,
          model: input.model,
          training: input.training,
          initialModelUri: input.initialModelUri,
          extension: input.extension,
          maxSteps: input.maxSteps,
          shuffleSeed: input.shuffleSeed,
          validate: input.validate,
          untilEpoch: input.untilEpoch,
          // A retried attempt continues from its own latest checkpoint, which is past the one it was asked to start from.
          resumeFrom: latest?.checkpoint?.uri ?? input.resumeFrom,
        };
        const options = {
          signal: context.cancellationSignal,
          onProgress,
          stopGraceMs: 30_000,
          silenceTimeoutMs: silenceTimeoutFor(context.info.heartbeatTimeoutMs),
        };
        const result = input.warmProcess
          ? await warmTrainingProcesses().run<TrainJobInput, TrainProgress, TrainJobResult>(job, { ...options, affinity: input.manifestUri })
          : await runChildTask<TrainJobInput, TrainProgress, TrainJobResult>(trainJobModule, job, { ...options, env: tensorflowThreadsEnv(settings().training) });
        trainingSamplesPerSecond.set({ model: input.modelName, backend: result.backend }, result.samplesPerSecond);
        return result;
      } catch (err) {
        // Cancelled: the child checkpointed and stopped; report the cancellation, not the way the child ended.
        if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
        if (!(err instanceof ChildTaskError)) throw err;
        if (err.name === 'ChildExited') {
          crashes.push(err.message);
          if (crashes.length < MAX_CHILD_CRASHES) continue;
          throw ApplicationFailure.create({
            type: 'TrainingCrashed',
            nonRetryable: true,
            message: `The training process crashed ${crashes.length} times: ${crashes.join('; ')}`,
          });
        }
        throw classifyChildError(err);
      }
    }
  } finally {
    trainingLastProgress.remove(progressLabels);
  }
}

/** An input may lower this worker's memory budget, never raise it (nor set one where the worker has none: that lowers it). */
function checkMemoryBudget(requested: number | null): void {
  const ceiling = settings().memoryBudgetBytes;
  if (requested !== null && ceiling !== null && requested > ceiling) {
    throw invalidInput('training.memoryBudgetBytes', `${requested} is over this worker's ceiling of ${ceiling} (${MEMORY_BUDGET_VARIABLE})`);
  }
}

function classifyChildError(err: ChildTaskError): Error {
  switch (err.name) {
    case 'InvalidDatasetError':
      return invalidInput('manifestUri', err.message);
    case 'InvalidCheckpointError':
      return invalidInput('resumeFrom', err.message);
    case 'StreamingCacheError':
      return invalidInput('training.shuffleWindow', err.message);
    case 'TeacherLogitsMismatchError':
      return invalidInput('teacherLogitsUri', err.message);
    case 'TrainingDivergedError':
      return ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
    default:
      // Anything else (EACCES, EIO, a hung child) is about this attempt, not the input: Temporal retries it.
      return ApplicationFailure.create({ type: err.name, message: err.message });
  }
}

function recordProgressMetrics(modelName: string, progress: TrainProgress, newCheckpoint: boolean): void {
  const labels = { model: modelName };
  if (Number.isFinite(progress.loss)) latestTrainingLoss.set(labels, progress.loss);
  if (Number.isFinite(progress.accuracy)) latestTrainingAccuracy.set(labels, progress.accuracy);
  if (progress.finishedEpoch) epochDuration.observe(labels, progress.finishedEpoch.seconds);
  if (newCheckpoint && progress.checkpoint?.bytes) checkpointBytesWritten.inc(labels, progress.checkpoint.bytes);
}
