import {
  ApplicationFailure,
  CancellationScope,
  condition,
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
import { hasPromotion, initialAshaState, recordResult, rungBudgets, takePromotion, type AshaState } from '../lib/asha';
import {
  ashaSettingsSchema,
  hyperparameterSweepInputSchema,
  SWEEP_METRICS,
  type HyperparameterSweepConfig,
  type HyperparameterSweepInput,
} from '../lib/schemas/hyperparameter-sweep';
import { trainModelInputSchema, type TrainModelInput } from '../lib/schemas/train-model';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import { applyAssignment, plannedTrials, rankTrial, samplingOf, trialAssignment, trialScore, type Assignment, type TrialOutcome } from '../lib/sweep';
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
  /** Trials finished so far over every run of the sweep, failed ones included (ASHA: trials past their first rung). */
  finished: number;
  failed: number;
  running: number;
  /** The best completed trials so far, best first. */
  top: TrialOutcome[];
  best: TrialOutcome | null;
  /** Epochs trained so far, summed over trials. */
  trialEpochs: number;
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
  trialEpochs: number;
  /** ASHA's rungs. */
  asha: AshaState | null;
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
  /** Epochs trained, summed over trials: what ASHA saves shows against trials x maxEpochs. */
  trialEpochs: number;
  /** ASHA: each rung's epoch budget and the trials that reached it. */
  rungs?: { epochs: number; trials: number }[];
}

/** What one run of the workflow works on; `running` is read by the status query. */
interface SweepRun {
  config: HyperparameterSweepConfig;
  total: number;
  progress: SweepProgress;
  running: number;
  finishedThisRun: TrialOutcome[];
}

/** An ASHA trial's next training: up to its rung's budget, continuing from its checkpoint past the first rung. */
interface RungStage {
  rung: number;
  untilEpoch: number;
  resumeFrom?: string;
}

/** The number of trials the input asks for, refused when it is over the worker's ceiling. */
function trialsWithin(config: HyperparameterSweepConfig, maxTrials: number): number {
  const total = plannedTrials(samplingOf(config), config.space, config.trials);
  if (total <= maxTrials) return total;
  const asked = config.trials === undefined ? `the grid has ${total} combinations` : `${total} trials`;
  throw invalidInput('trials', `${asked}, more than this worker's maximum of ${maxTrials} per sweep (TEMPORAL_ML_MAX_SWEEP_TRIALS); ask for fewer`);
}

function trialInput(config: HyperparameterSweepConfig, assignment: Assignment, stage: RungStage | undefined): unknown {
  const base = { modelName: config.modelName, manifestUri: config.manifestUri, model: config.base.model, training: config.base.training };
  const input = applyAssignment(base, assignment);
  if (!stage) return input;
  return { ...input, training: { ...input.training, epochs: config.asha!.maxEpochs }, untilEpoch: stage.untilEpoch, resumeFrom: stage.resumeFrom };
}

async function runTrial(config: HyperparameterSweepConfig, index: number, stage?: RungStage): Promise<TrialOutcome> {
  const trial = index + 1;
  const workflowId = `${workflowInfo().workflowId}-trial-${trial}${stage?.rung ? `-rung-${stage.rung}` : ''}`;
  const assignment = trialAssignment(samplingOf(config), config.space, config.seed, index);
  // Checked as the trial starts: a space can hold far more points than could be checked up front.
  const input = parseWorkflowInput(`hyperparameterSweep trial ${trial} (${JSON.stringify(assignment)})`, trainModelInputSchema, trialInput(config, assignment, stage));
  const rung = stage && { rung: stage.rung };
  try {
    const result = await executeChild(trainModel, { workflowId, args: [input as TrainModelInput] });
    const epochs = result.history.length;
    const maxEpochs = config.asha?.maxEpochs;
    return {
      trial,
      workflowId,
      assignment,
      status: 'completed',
      score: trialScore(config.metric, result.bestEpoch),
      bestEpoch: result.bestEpoch.epoch,
      epochs,
      modelUri: result.modelUri,
      testAccuracy: result.evaluation.accuracy,
      ...(rung && {
        ...rung,
        // Only a trial that trained its whole budget can go on; one its own early stopping ended cannot.
        ...(epochs < maxEpochs! && !result.stoppedEarly && { checkpointUri: result.checkpointUri }),
        stoppedEarly: epochs < maxEpochs!,
      }),
    };
  } catch (err) {
    // The sweep is being cancelled, or stopped by an invalid trial: that ends the sweep, it is not this trial's result.
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) throw err;
    // One failed trial (a diverging learning rate, say) is a result, not a reason to stop the sweep.
    return { trial, workflowId, assignment, status: 'failed', error: rootCauseMessage(err), ...rung };
  }
}

async function runTrialIn(run: SweepRun, index: number, stage?: RungStage): Promise<TrialOutcome> {
  run.running++;
  try {
    return await runTrial(run.config, index, stage);
  } finally {
    run.running--;
  }
}

/** Counts a trial's training (`epochsBefore` of them done by its earlier rungs) and ranks it. */
function recordOutcome(run: SweepRun, outcome: TrialOutcome, epochsBefore: number): void {
  const { progress } = run;
  run.finishedThisRun.push(outcome);
  progress.trialEpochs += (outcome.epochs ?? epochsBefore) - epochsBefore;
  if (outcome.status === 'failed') {
    progress.failed++;
    progress.firstError ??= outcome.error ?? null;
  }
  progress.top = rankTrial(progress.top, outcome, run.config.metric, TOP_TRIALS);
}

/** Grid or random search: this run's share of trials in index order. Returns whether trials are left for another run. */
async function searchRun(run: SweepRun): Promise<boolean> {
  const { config, progress, total } = run;
  const runEnd = Math.min(total, progress.nextTrial + config.trialsPerRun);
  progress.nextTrial = await fanOut(
    progress.nextTrial,
    runEnd,
    config.parallelism,
    async (index) => {
      const outcome = await runTrialIn(run, index);
      progress.finished++;
      recordOutcome(run, outcome, 0);
    },
    () => workflowInfo().continueAsNewSuggested,
  );
  return progress.nextTrial < total;
}

/**
 * ASHA: each free slot takes a promotion (the highest rung's first), else the next new trial, else waits for a running
 * training to report; a run starts at most `trialsPerRun` trainings. Returns whether work is left for another run.
 */
async function ashaRun(run: SweepRun): Promise<boolean> {
  const { config, progress, total } = run;
  const settings = config.asha!;
  const eta = settings.reductionFactor;
  const budgets = rungBudgets(settings);
  const asha = (progress.asha ??= initialAshaState(settings));
  let reports = 0;
  let exhausted = false;
  const nextStage = async (): Promise<{ index: number; stage: RungStage } | null> => {
    for (;;) {
      const promotion = takePromotion(asha, eta);
      if (promotion) return { index: promotion.trial - 1, stage: { rung: promotion.rung, untilEpoch: budgets[promotion.rung]!, resumeFrom: promotion.checkpointUri } };
      if (progress.nextTrial < total) return { index: progress.nextTrial++, stage: { rung: 0, untilEpoch: budgets[0]! } };
      // Nothing running can make a trial promotable any more.
      if (run.running === 0) return null;
      const seen = reports;
      await condition(() => reports !== seen);
    }
  };
  await fanOut(
    0,
    config.trialsPerRun,
    config.parallelism,
    async () => {
      const next = await nextStage();
      if (!next) {
        exhausted = true;
        return;
      }
      const { index, stage } = next;
      const outcome = await runTrialIn(run, index, stage);
      if (stage.rung === 0) progress.finished++;
      recordOutcome(run, outcome, stage.rung === 0 ? 0 : budgets[stage.rung - 1]!);
      if (outcome.status === 'completed') {
        recordResult(asha, eta, total, SWEEP_METRICS[config.metric], stage.rung, { trial: outcome.trial, score: outcome.score!, checkpointUri: outcome.checkpointUri });
      }
      reports++;
    },
    () => exhausted || workflowInfo().continueAsNewSuggested,
  );
  return progress.nextTrial < total || hasPromotion(asha, eta);
}

/**
 * Trains one model per point of a declared search space (grid or random), fanned out under a parallelism limit, or
 * with ASHA, stopping the trials that fall behind at each rung. Trials are enumerated one at a time by index; every
 * `trialsPerRun` trials (ASHA: trainings) the workflow continues as new, carrying only counts, the best trials, ASHA's
 * rungs and a link to the stored table of the trials so far.
 */
export async function hyperparameterSweep(input: HyperparameterSweepInput, carried?: SweepProgress): Promise<HyperparameterSweepResult> {
  const progress: SweepProgress = { nextTrial: 0, finished: 0, failed: 0, top: [], firstError: null, tableUri: null, runs: 0, trialEpochs: 0, asha: null, ...carried };
  progress.runs++;
  let total = 0;
  let run: SweepRun | undefined = undefined;
  setHandler(sweepStatusQuery, () => ({
    total,
    finished: progress.finished,
    failed: progress.failed,
    running: run?.running ?? 0,
    top: progress.top,
    best: progress.top[0] ?? null,
    trialEpochs: progress.trialEpochs,
  }));
  const config = parseWorkflowInput('hyperparameterSweep', hyperparameterSweepInputSchema, input);
  if (config.search === 'asha') config.asha ??= ashaSettingsSchema.parse({});
  const constraints = await sweepConstraints({ manifestUri: config.manifestUri });
  if (constraints.validationImages === 0) {
    throw invalidInput('metric', `${config.metric} is measured on validation images, and the dataset at ${config.manifestUri} has none; preprocess it with a validationFraction above 0`);
  }
  total = trialsWithin(config, constraints.maxTrials);
  upsertSearchAttributes([
    { key: ML_MODEL, value: config.modelName },
    { key: ML_STAGE, value: 'sweep' },
  ]);

  run = { config, total, progress, running: 0, finishedThisRun: [] };
  const workLeft = config.search === 'asha' ? await ashaRun(run) : await searchRun(run);
  if (workLeft) {
    const tableUri = await storeTrialTablePart({ previousUri: progress.tableUri, trials: run.finishedThisRun });
    return continueAsNew<typeof hyperparameterSweep>(input, { ...progress, tableUri });
  }
  upsertSearchAttributes([{ key: ML_STAGE, value: 'done' }]);
  const best = progress.top[0];
  if (!best) throw ApplicationFailure.nonRetryable(`All ${total} trials failed; the first error: ${progress.firstError}`, 'SweepFailed');
  const trialTableUri = await writeTrialTable({ previousUri: progress.tableUri, trials: run.finishedThisRun });
  const { metric } = config;
  const rungs = progress.asha && rungBudgets(config.asha!).map((epochs, k) => ({ epochs, trials: progress.asha!.rungs[k]!.reported }));
  const report = await writeReport({ title: `hyperparameterSweep ${workflowInfo().workflowId}: ${config.modelName}`, sweep: { trialTableUri, metric } });
  return { metric, best, top: progress.top, total, failed: progress.failed, runs: progress.runs, trialTableUri, trialEpochs: progress.trialEpochs, ...(rungs && { rungs }), ...report };
}
