import { Context } from '@temporalio/activity';
import { settings } from '../lib/config';
import { ChildTaskError, runChildTask, silenceTimeoutFor } from '../lib/child-task';
import type { EvaluateJobInput, EvaluationProgress, EvaluationSummary } from '../lib/evaluation/evaluate-job';
import { modelTestAccuracy } from '../lib/metrics';
import type { Split } from '../lib/split';
import { invalidInput } from '../lib/validate';

export type { EvaluationReport, EvaluationSummary } from '../lib/evaluation/evaluate-job';

export interface EvaluateModelInput {
  modelName: string;
  modelUri: string;
  manifestUri: string;
  split?: Split;
}

const evaluateJobModule = require.resolve('../lib/evaluation/evaluate-job');

/**
 * Scores a stored model on one split of a dataset in a child process, heartbeating the child's progress;
 * cancellation kills the child. Returns a small summary; the full report is an artifact.
 */
export async function evaluateModel(input: EvaluateModelInput): Promise<EvaluationSummary> {
  const context = Context.current();
  const split = input.split ?? 'test';
  try {
    const summary = await runChildTask<EvaluateJobInput, EvaluationProgress, EvaluationSummary>(
      evaluateJobModule,
      { artifactRoot: settings().artifactRoot, modelUri: input.modelUri, manifestUri: input.manifestUri, split },
      {
        signal: context.cancellationSignal,
        onProgress: (progress) => context.heartbeat(progress),
        silenceTimeoutMs: silenceTimeoutFor(context.info.heartbeatTimeoutMs),
      },
    );
    if (split === 'test') modelTestAccuracy.set({ model: input.modelName }, summary.accuracy);
    return summary;
  } catch (err) {
    if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
    if (err instanceof ChildTaskError && (err.name === 'EmptySplitError' || err.name === 'InvalidDatasetError')) throw invalidInput('manifestUri', err.message);
    throw err;
  }
}
