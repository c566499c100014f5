import { ApplicationFailure, executeChild, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { hyperparameterSweepInputSchema, SWEEP_METRICS, type HyperparameterSweepInput } from '../lib/schemas/hyperparameter-sweep';
import { trainModelInputSchema, type TrainModelInput } from '../lib/schemas/train-model';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import { applyAssignment, gridAssignments, randomAssignments, type Assignment } from '../lib/sweep';
import { parseWorkflowInput } from '../lib/validate';
import { mapWithConcurrency } from '../lib/concurrency';
import { sweepStatusQuery } from './definitions';
import { trainModel, type TrainModelResult } from './train-model';

export interface TrialOutcome {
  trial: number;
  workflowId: string;
  assignment: Assignment;
  status: 'completed' | 'failed';
  /** The declared metric's value (completed trials). */
  score?: number;
  modelUri?: string;
  testAccuracy?: number;
  epochs?: number;
  error?: string;
}

export interface SweepStatus {
  total: number;
  running: number;
  finished: TrialOutcome[];
  best: TrialOutcome | null;
}

export interface HyperparameterSweepResult {
  metric: string;
  best: TrialOutcome;
  trials: TrialOutcome[];
}

function scoreOf(metric: keyof typeof SWEEP_METRICS, result: TrainModelResult): number {
  const last = result.history.at(-1);
  switch (metric) {
    case 'testAccuracy':
      return result.evaluation.accuracy;
    case 'testLoss':
      return result.evaluation.loss;
    case 'validationAccuracy':
      return last?.validationAccuracy ?? NaN;
    case 'validationLoss':
      return last?.validationLoss ?? NaN;
  }
}

/** The innermost message of a failure chain (child workflow, then activity, then what actually went wrong). */
function rootCauseMessage(err: unknown): string {
  let current = err as Error;
  while (current.cause instanceof Error) current = current.cause;
  return current.message;
}

/** Trains one model per point of a declared search space (grid or random), fanned out under a parallelism limit. */
export async function hyperparameterSweep(input: HyperparameterSweepInput): Promise<HyperparameterSweepResult> {
  const status: SweepStatus = { total: 0, running: 0, finished: [], best: null };
  setHandler(sweepStatusQuery, () => status);
  const config = parseWorkflowInput('hyperparameterSweep', hyperparameterSweepInputSchema, input);
  const assignments =
    config.search === 'grid' ? gridAssignments(config.space).slice(0, config.trials) : randomAssignments(config.space, config.trials ?? 10, config.seed);
  const base = { modelName: config.modelName, manifestUri: config.manifestUri, model: config.base.model, training: config.base.training };
  const trials = assignments.map((assignment, i) => ({
    assignment,
    // Every trial is checked before the first one starts: a bad value fails the sweep now, naming the trial.
    input: parseWorkflowInput(`hyperparameterSweep trial ${i + 1} (${JSON.stringify(assignment)})`, trainModelInputSchema, applyAssignment(base, assignment)) as TrainModelInput,
  }));
  status.total = trials.length;
  const better = (a: number, b: number) => (SWEEP_METRICS[config.metric] === 'max' ? a > b : a < b);
  upsertSearchAttributes([
    { key: ML_MODEL, value: config.modelName },
    { key: ML_STAGE, value: 'sweep' },
  ]);

  await mapWithConcurrency(trials, config.parallelism, async ({ assignment, input: trialInput }, i) => {
    const workflowId = `${workflowInfo().workflowId}-trial-${i + 1}`;
    status.running++;
    let outcome: TrialOutcome;
    try {
      const result = await executeChild(trainModel, { workflowId, args: [trialInput] });
      outcome = {
        trial: i + 1,
        workflowId,
        assignment,
        status: 'completed',
        score: scoreOf(config.metric, result),
        modelUri: result.modelUri,
        testAccuracy: result.evaluation.accuracy,
        epochs: result.history.length,
      };
    } catch (err) {
      // One failed trial (a diverging learning rate, say) is a result, not a reason to stop the sweep.
      outcome = { trial: i + 1, workflowId, assignment, status: 'failed', error: rootCauseMessage(err) };
    }
    status.running--;
    status.finished.push(outcome);
    if (outcome.status === 'completed' && Number.isFinite(outcome.score) && (!status.best || better(outcome.score!, status.best.score!))) status.best = outcome;
  });

  upsertSearchAttributes([{ key: ML_STAGE, value: 'done' }]);
  if (!status.best) throw ApplicationFailure.nonRetryable(`All ${trials.length} trials failed; the first error: ${status.finished[0]?.error}`, 'SweepFailed');
  return { metric: config.metric, best: status.best, trials: [...status.finished].sort((a, b) => a.trial - b.trial) };
}
