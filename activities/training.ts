import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { settings } from '../lib/config';
import { ChildTaskError, runChildTask } from '../lib/child-task';
import { trainingSamplesPerSecond } from '../lib/metrics';
import type { ModelSpec, TrainingSpec } from '../lib/schemas/model';
import type { TrainJobInput, TrainJobResult, TrainProgress } from '../lib/training/train-job';

export interface TrainModelInput {
  modelName: string;
  manifestUri: string;
  model: ModelSpec;
  training: TrainingSpec;
}

const HEARTBEAT_INTERVAL_MS = 5_000;
const trainJobModule = require.resolve('../lib/training/train-job');

/** Trains a model in a child process, heartbeating its progress; cancellation kills the child. */
export async function trainModel(input: TrainModelInput): Promise<TrainJobResult> {
  const context = Context.current();
  let latest: TrainProgress | undefined;
  const keepAlive = setInterval(() => context.heartbeat(latest), HEARTBEAT_INTERVAL_MS);
  try {
    const result = await runChildTask<TrainJobInput, TrainProgress, TrainJobResult>(
      trainJobModule,
      { artifactRoot: settings().artifactRoot, manifestUri: input.manifestUri, model: input.model, training: input.training },
      {
        signal: context.cancellationSignal,
        onProgress: (progress) => {
          latest = progress;
          context.heartbeat(progress);
        },
      },
    );
    trainingSamplesPerSecond.set({ model: input.modelName, backend: result.backend }, result.samplesPerSecond);
    return result;
  } catch (err) {
    if (err instanceof ChildTaskError && err.name === 'TrainingDivergedError') {
      throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
    }
    throw err;
  } finally {
    clearInterval(keepAlive);
  }
}
