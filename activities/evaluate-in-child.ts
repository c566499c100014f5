import { Context } from '@temporalio/activity';
import { settings } from '../lib/config';
import { ChildTaskError, runChildTask, silenceTimeoutFor } from '../lib/child-task';
import type { EvaluateJobInput, EvaluationProgress, EvaluationSummary } from '../lib/evaluation/evaluate-job';
import { invalidInput } from '../lib/validate';

const evaluateJobModule = require.resolve('../lib/evaluation/evaluate-job');

/**
 * Runs the evaluation job in a child process for the current activity, heartbeating the child's progress;
 * cancellation kills the child. A dataset that cannot be evaluated on is a user error naming `manifestUri`.
 */
export async function evaluateInChild(job: Omit<EvaluateJobInput, 'artifactRoot'>): Promise<EvaluationSummary> {
  const context = Context.current();
  try {
    return await runChildTask<EvaluateJobInput, EvaluationProgress, EvaluationSummary>(
      evaluateJobModule,
      { artifactRoot: settings().artifactRoot, ...job },
      {
        signal: context.cancellationSignal,
        onProgress: (progress) => context.heartbeat(progress),
        silenceTimeoutMs: silenceTimeoutFor(context.info.heartbeatTimeoutMs),
      },
    );
  } catch (err) {
    if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
    if (err instanceof ChildTaskError && (err.name === 'EmptySplitError' || err.name === 'InvalidDatasetError')) throw invalidInput('manifestUri', err.message);
    throw err;
  }
}
