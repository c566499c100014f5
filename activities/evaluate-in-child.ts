import { artifactStore } from '../lib/artifacts';
import { Context } from '@temporalio/activity';
import { settings } from '../lib/config';
import { ChildTaskError, WarmChildPool, silenceTimeoutFor } from '../lib/child-task';
import type { EvaluateJobInput, EvaluationProgress, EvaluationSummary } from '../lib/evaluation/evaluate-job';
import { invalidInput } from '../lib/validate';

const evaluateJobModule = require.resolve('../lib/evaluation/evaluate-job');
let warmEvaluators: WarmChildPool | undefined;

/**
 * Runs the evaluation job for the current activity in this worker's warm evaluation process, which keeps TensorFlow
 * loaded and the split cached for the next evaluation (see WarmChildPool; `TEMPORAL_ML_WARM_CHILD_IDLE_SECONDS=0`
 * starts a process per evaluation), heartbeating the child's progress; cancellation kills the child. A dataset that
 * cannot be evaluated on is a user error naming `manifestUri`.
 */
export async function evaluateInChild(job: Omit<EvaluateJobInput, 'artifacts'>): Promise<EvaluationSummary> {
  const context = Context.current();
  const input: EvaluateJobInput = { artifacts: await artifactStore().describeForChild(), ...job };
  const options = {
    signal: context.cancellationSignal,
    onProgress: (progress: EvaluationProgress) => context.heartbeat(progress),
    silenceTimeoutMs: silenceTimeoutFor(context.info.heartbeatTimeoutMs),
  };
  try {
    warmEvaluators ??= new WarmChildPool(evaluateJobModule, { maxIdle: 1, idleSeconds: settings().warmChildren.idleSeconds });
    return await warmEvaluators.run<EvaluateJobInput, EvaluationProgress, EvaluationSummary>(input, { ...options, affinity: job.manifestUri });
  } catch (err) {
    if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
    if (err instanceof ChildTaskError && (err.name === 'EmptySplitError' || err.name === 'InvalidDatasetError')) throw invalidInput('manifestUri', err.message);
    throw err;
  }
}
