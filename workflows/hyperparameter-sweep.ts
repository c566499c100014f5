import {
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  executeChild,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { ReportLocation } from '../activities/report';
import { hyperparameterSweepInputSchema, type HyperparameterSweepConfig, type HyperparameterSweepInput } from '../lib/schemas/hyperparameter-sweep';
import { trainModelInputSchema, type TrainModelInput } from '../lib/schemas/train-model';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import { applyAssignment, plannedTrials, rankTrial, trialAssignment, trialScore, type TrialOutcome } from '../lib/sweep';
import { invalidInput, parseWorkflowInput } from '../lib/validate';
import { trainModel } from './train-model';
import { sweepStatusQuery } from './definitions';
import { fanOut } from './fan-out';
import { rootCauseMessage } from './failures';
import { writeReport } from './report';

const { sweepConstraints, storeTrialTablePart, writeTrialTable } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

/** Best trials kept in the status and the result; the trial table holds them all. */
const TOP_TRIALS = 10;

export interface SweepStatus {
  total: number;
  /** Trials finished so far over every run of the sweep, failed ones included. */
  finished: number;
  failed: number;
  running: number;
  /** The best completed trials so far, best first. */
  top: TrialOutcome[];
  best: TrialOutcome | null;
}

/** What one run of the sweep hands the next when it continues as new. */
export interface SweepProgress {
  /** 0-based index of the next trial to start. */
  nextTrial: number;
  finished: number;
  failed: number;
  top: TrialOutcome[];
  firstError: string | null;
  /** The earlier runs' trials: the last of a chain of table parts. */
  tableUri: string | null;
  runs: number;
}

export interface HyperparameterSweepResult extends ReportLocation {
  metric: string;
  best: TrialOutcome;
  top: TrialOutcome[];
  total: number;
  failed: number;
  /** Runs of the workflow the sweep took: it continues as new every `trialsPerRun` trials. */
  runs: number;
  /** JSON array of every trial's outcome, in trial order. */
  trialTableUri: string;
}

/** The number of trials the input asks for, refused when it is over the worker's ceiling. */
function trialsWithin(config: HyperparameterSweepConfig, maxTrials: number): number {
  const total = plannedTrials(config.search, config.space, config.trials);
  if (total <= maxTrials) return total;
  const asked = config.trials === undefined ? `the grid has ${total} combinations` : `${total} trials`;
  throw invalidInput('trials', `${asked}, more than this worker's maximum of ${maxTrials} per sweep (TEMPORAL_ML_MAX_SWEEP_TRIALS); ask for fewer`);
}

async function runTrial(config: HyperparameterSweepConfig, index: number): Promise<TrialOutcome> {
  const trial = index + 1;
  const workflowId = `${workflowInfo().workflowId}-trial-${trial}`;
  const assignment = trialAssignment(config.search, config.space, config.seed, index);
  const base = { modelName: config.modelName, manifestUri: config.manifestUri, model: config.base.model, training: config.base.training };
  // Checked as the trial starts: a space can hold far more points than could be checked up front.
  const input = parseWorkflowInput(`hyperparameterSweep trial ${trial} (${JSON.stringify(assignment)})`, trainModelInputSchema, applyAssignment(base, assignment));
  try {
    const result = await executeChild(trainModel, { workflowId, args: [input as TrainModelInput] });
    return {
      trial,
      workflowId,
      assignment,
      status: 'completed',
      score: trialScore(config.metric, result.bestEpoch),
      bestEpoch: result.bestEpoch.epoch,
      epochs: result.history.length,
      modelUri: result.modelUri,
      testAccuracy: result.evaluation.accuracy,
    };
  } catch (err) {
    // The sweep is being cancelled, or stopped by an invalid trial: that ends the sweep, it is not this trial's result.
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) throw err;
    // One failed trial (a diverging learning rate, say) is a result, not a reason to stop the sweep.
    return { trial, workflowId, assignment, status: 'failed', error: rootCauseMessage(err) };
  }
}

/**
 * Trains one model per point of a declared search space (grid or random), fanned out under a parallelism limit.
 * Trials are enumerated one at a time by index; every `trialsPerRun` trials the workflow continues as new, carrying
 * only counts, the best trials and a link to the stored table of the trials so far.
 */
export async function hyperparameterSweep(input: HyperparameterSweepInput, carried?: SweepProgress): Promise<HyperparameterSweepResult> {
  const progress: SweepProgress = carried ?? { nextTrial: 0, finished: 0, failed: 0, top: [], firstError: null, tableUri: null, runs: 0 };
  progress.runs++;
  let total = 0;
  let running = 0;
  setHandler(sweepStatusQuery, () => ({ total, finished: progress.finished, failed: progress.failed, running, top: progress.top, best: progress.top[0] ?? null }));
  const config = parseWorkflowInput('hyperparameterSweep', hyperparameterSweepInputSchema, input);
  const constraints = await sweepConstraints({ manifestUri: config.manifestUri });
  if (constraints.validationImages === 0) {
    throw invalidInput('metric', `${config.metric} is measured on validation images, and the dataset at ${config.manifestUri} has none; preprocess it with a validationFraction above 0`);
  }
  total = trialsWithin(config, constraints.maxTrials);
  upsertSearchAttributes([
    { key: ML_MODEL, value: config.modelName },
    { key: ML_STAGE, value: 'sweep' },
  ]);

  const finishedThisRun: TrialOutcome[] = [];
  const runEnd = Math.min(total, progress.nextTrial + config.trialsPerRun);
  progress.nextTrial = await fanOut(
    progress.nextTrial,
    runEnd,
    config.parallelism,
    async (index) => {
      running++;
      const outcome = await runTrial(config, index).finally(() => running--);
      finishedThisRun.push(outcome);
      progress.finished++;
      if (outcome.status === 'failed') {
        progress.failed++;
        progress.firstError ??= outcome.error ?? null;
      }
      progress.top = rankTrial(progress.top, outcome, config.metric, TOP_TRIALS);
    },
    () => workflowInfo().continueAsNewSuggested,
  );

  if (progress.nextTrial < total) {
    const tableUri = await storeTrialTablePart({ previousUri: progress.tableUri, trials: finishedThisRun });
    return continueAsNew<typeof hyperparameterSweep>(input, { ...progress, tableUri });
  }
  upsertSearchAttributes([{ key: ML_STAGE, value: 'done' }]);
  const best = progress.top[0];
  if (!best) throw ApplicationFailure.nonRetryable(`All ${total} trials failed; the first error: ${progress.firstError}`, 'SweepFailed');
  const trialTableUri = await writeTrialTable({ previousUri: progress.tableUri, trials: finishedThisRun });
  const report = await writeReport({ title: `hyperparameterSweep ${workflowInfo().workflowId}: ${config.modelName}`, sweep: { trialTableUri, metric: config.metric } });
  return { metric: config.metric, best, top: progress.top, total, failed: progress.failed, runs: progress.runs, trialTableUri, ...report };
}
