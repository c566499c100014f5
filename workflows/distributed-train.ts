import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import type { TrainPartitionResult } from '../activities/distributed';
import type { EvaluationSummary } from '../activities/evaluation';
import type { ReportLocation } from '../activities/report';
import { quorumCount, reachedEnd, weightedLoss, type RoundRecord } from '../lib/distributed/rounds';
import { isTooStale, mixingWeight } from '../lib/distributed/staleness';
import { distributedTrainInputSchema, type DistributedTrainConfig, type DistributedTrainInput } from '../lib/schemas/distributed-train';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import { INVALID_INPUT, invalidInput, parseWorkflowInput } from '../lib/validate';
import { distributedProgressQuery } from './definitions';
import { writeReport } from './report';

const { trainPartition } = proxyActivities<typeof activities>({
  taskQueue: 'ml-train',
  startToCloseTimeout: '24 hours',
  // As trainModel's: a dead worker is noticed within this, and the retry resumes from the partition's last checkpoint.
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 20 },
  // A cancelled straggler has stopped training before its partition is trained again.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

const { partitionDataset, aggregateWeights, mergeUpdate, storeRoundHistoryPart, writeRoundHistory } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

const { evaluateModel } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5 },
});

/** Sync runs started before this patch score each round's model before the next round starts training. */
const SCORE_WHILE_NEXT_ROUND_TRAINS = 'score-while-next-round-trains';

/** A run continues as new once its history passes this many events (a fifth of Temporal's limit), whatever the rounds. */
const EVENTS_PER_RUN = 10_000;

export type PartitionState = 'waiting' | 'training' | 'reported' | 'skipped';

/** What the `progress` query answers. */
export interface DistributedProgress {
  stage: 'partitioning' | 'training' | 'evaluating' | 'done';
  mode: DistributedTrainConfig['mode'];
  /** Rounds completed, over every run of the workflow, and the most it will take. */
  round: number;
  rounds: number;
  partitions: { index: number; images: number; state: PartitionState; lastLoss: number | null }[];
  /** The global model's score on the validation split after the last completed round. */
  validationAccuracy: number | null;
  validationLoss: number | null;
  /** Sync: partitions cancelled as stragglers in the last round; `skippedUpdates` counts them over the whole run. */
  stragglers: number[];
  skippedUpdates: number;
  /** Async: updates dropped as staler than `maxStaleness`, over the whole run. */
  droppedStaleUpdates: number;
  runs: number;
}

/** What one run of the workflow hands the next when it continues as new: URIs and small figures only. */
export interface DistributedRunState {
  /** Workflow time (ms) the first run started at; round records count seconds from it. */
  startedAt: number;
  runs: number;
  partitions: { index: number; manifestUri: string; count: number }[];
  partitionReportUri: string;
  /** Rounds completed. */
  round: number;
  globalModelUri: string | null;
  /** Async: updates merged into the global model so far; staleness is measured in these. */
  globalVersion: number;
  /** Each partition's optimizer state as its last update left it (null: start afresh). */
  optimizerStateUris: (string | null)[];
  validation: { accuracy: number; loss: number } | null;
  skippedUpdates: number;
  droppedStaleUpdates: number;
  /** The earlier runs' rounds: the last of a chain of history parts. */
  historyUri: string | null;
}

export interface DistributedTrainResult extends ReportLocation {
  modelName: string;
  /** The global model after the last round. */
  modelUri: string;
  mode: DistributedTrainConfig['mode'];
  numWorkers: number;
  /** Training images over all partitions. */
  trainSamples: number;
  rounds: number;
  reachedTarget: boolean;
  validationAccuracy: number;
  validationLoss: number;
  skippedUpdates: number;
  droppedStaleUpdates: number;
  /** Runs of the workflow the training took: it continues as new every `roundsPerRun` rounds or when Temporal suggests. */
  runs: number;
  seconds: number;
  /** Images per class per partition, as `partitionDataset` reported them. */
  partitionReportUri: string;
  /** JSON array of every round's record (validation accuracy and loss against wall time), in round order. */
  historyUri: string;
  /** The global model on the test split. */
  evaluation: EvaluationSummary;
}

interface Run {
  config: DistributedTrainConfig;
  state: DistributedRunState;
  progress: DistributedProgress;
  /** Rounds completed in this run of the workflow. */
  records: RoundRecord[];
  /** A round cancelled because the run had reached its end, until its partitions have stopped. */
  draining?: Promise<void>;
}

/** Splits the training images among `numWorkers` partitions; a dataset with too few images is the input's fault. */
async function partition(config: DistributedTrainConfig, startedAt: number): Promise<DistributedRunState> {
  const partitioned = await partitionDataset({
    manifestUri: config.manifestUri,
    numPartitions: config.numWorkers,
    partition: { strategy: config.partition.strategy, alpha: config.partition.alpha, seed: config.partition.seed ?? config.seed },
  }).catch((err: unknown) => {
    const cause = err instanceof ActivityFailure ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === INVALID_INPUT && cause.message.startsWith('numPartitions: ')) {
      throw invalidInput('numWorkers', cause.message.slice('numPartitions: '.length));
    }
    throw err;
  });
  return {
    startedAt,
    runs: 0,
    partitions: partitioned.partitions.map(({ index, manifestUri, count }) => ({ index, manifestUri, count })),
    partitionReportUri: partitioned.reportUri,
    round: 0,
    globalModelUri: null,
    globalVersion: 0,
    optimizerStateUris: partitioned.partitions.map(() => null),
    validation: null,
    skippedUpdates: 0,
    droppedStaleUpdates: 0,
    historyUri: null,
  };
}

/** Trains one partition for `round` from `globalModelUri` (null: the seeded initial weights, the same in every partition). */
function trainFrom(run: Run, index: number, round: number, globalModelUri: string | null): Promise<TrainPartitionResult> {
  const { config, state } = run;
  return trainPartition({
    modelName: config.modelName,
    round,
    partition: index,
    manifestUri: state.partitions[index]!.manifestUri,
    globalModelUri,
    model: config.model,
    training: { ...config.training, epochs: config.localEpochs, earlyStopping: null, seed: config.seed },
    localSteps: config.localSteps,
    optimizerStateUri: state.optimizerStateUris[index] ?? null,
  });
}

function reported(run: Run, index: number, update: TrainPartitionResult): void {
  run.state.optimizerStateUris[index] = update.optimizerStateUri;
  Object.assign(run.progress.partitions[index]!, { state: 'reported', lastLoss: update.loss });
}

/** What a round hands over to be closed: the new global model and the round's figures. */
type TrainedRound = Omit<RoundRecord, 'round' | 'seconds' | 'validationAccuracy' | 'validationLoss'> & { globalModelUri: string };

/** Makes `round`'s model the global one, scores it on the validation split and closes the round; returns whether the run is done. */
async function closeRound(run: Run, { globalModelUri, ...round }: TrainedRound): Promise<boolean> {
  const { config, state, progress } = run;
  state.globalModelUri = globalModelUri;
  const validation = await evaluateModel({
    modelName: config.modelName,
    modelUri: globalModelUri,
    manifestUri: config.manifestUri,
    split: 'validation',
    // A round's score decides the run; timing predictions would only take CPU from the next round's training.
    measureLatency: false,
  });
  state.round++;
  state.validation = { accuracy: validation.accuracy, loss: validation.loss };
  progress.stragglers = round.skipped;
  progress.skippedUpdates = state.skippedUpdates += round.skipped.length;
  run.records.push({
    round: state.round,
    seconds: (Date.now() - state.startedAt) / 1000,
    validationAccuracy: validation.accuracy,
    validationLoss: validation.loss,
    ...round,
  });
  Object.assign(progress, { round: state.round, validationAccuracy: validation.accuracy, validationLoss: validation.loss });
  return reachedEnd(state.round, config.rounds, validation.accuracy, config.target.validationAccuracy);
}

/**
 * One synchronous round's training (FedAvg): every partition trains from `globalModelUri`; the round closes when all
 * have reported, or, once `roundTimeoutSeconds` has passed, as soon as a quorum has. Stragglers are cancelled (and
 * their training stopped) and skipped this round; they train again from the new global model in the next. Returns
 * the aggregate of the updates that arrived, not yet the global model: the caller closes the round.
 */
async function trainRound(run: Run, round: number, globalModelUri: string | null): Promise<TrainedRound> {
  const { config, state, progress } = run;
  const count = state.partitions.length;
  const updates: (TrainPartitionResult | undefined)[] = Array.from({ length: count }, () => undefined);
  let reportedCount = 0;
  let failure: { error: unknown } | undefined;
  // Once the round has closed, a straggler is skipped even if its result arrives before its cancellation does (an
  // activity learns of it only from a heartbeat's reply, and short ones may finish first).
  let closed = false;
  const scope = new CancellationScope();
  const training = scope.run(() =>
    Promise.all(
      state.partitions.map(async ({ index }) => {
        progress.partitions[index]!.state = 'training';
        try {
          const update = await trainFrom(run, index, round, globalModelUri);
          if (closed) return;
          updates[index] = update;
          reportedCount++;
          reported(run, index, update);
        } catch (error) {
          if (!closed && !(isCancellation(error) && scope.consideredCancelled)) failure ??= { error };
        }
      }),
    ),
  );
  const allReported = () => reportedCount === count || failure !== undefined;
  const timeoutSeconds = config.sync.roundTimeoutSeconds;
  try {
    if (timeoutSeconds === null) await condition(allReported);
    else if (!(await condition(allReported, timeoutSeconds * 1000))) {
      const needed = quorumCount(count, config.sync.quorum);
      await condition(() => reportedCount >= needed || failure !== undefined);
    }
  } finally {
    closed = true;
    if (reportedCount < count) scope.cancel();
    await training;
  }
  if (failure) throw failure.error;

  const skipped = state.partitions.map(({ index }) => index).filter((index) => !updates[index]);
  for (const index of skipped) progress.partitions[index]!.state = 'skipped';
  const arrived = updates.filter((update): update is TrainPartitionResult => update !== undefined);
  const aggregated = await aggregateWeights({ updates: arrived.map(({ modelUri, samples }) => ({ modelUri, samples })) });
  return { globalModelUri: aggregated.modelUri, trainLoss: weightedLoss(arrived), updates: arrived.length, skipped, droppedStale: 0, aggregationSeconds: aggregated.seconds };
}

/**
 * Synchronous rounds until the run is done or due to continue as new. The next round trains while the last one's
 * global model is scored (scoring does not change it); when that score ends the run, the next round is cancelled and
 * discarded, whatever it ends with, and `run.draining` settles once its partitions have stopped. An aggregation it had
 * begun is not waited for (it does not heartbeat, and writes only an unused, content-addressed artifact).
 */
async function syncRounds(run: Run, continueAsNewDueAfter: (rounds: number) => boolean): Promise<boolean> {
  const { config, state, progress } = run;
  const inFlight = (round: number, globalModelUri: string | null) => {
    const scope = new CancellationScope();
    const trained = scope.run(() => trainRound(run, round, globalModelUri));
    // Awaited once the previous round's scoring ends: a failure before then is not an unhandled rejection.
    trained.catch(() => undefined);
    return { trained, cancel: () => scope.cancel() };
  };
  let next = inFlight(state.round + 1, state.globalModelUri);
  for (;;) {
    const trained = await next.trained;
    const round = state.round + 1;
    const closing = closeRound(run, trained);
    if (round >= config.rounds || continueAsNewDueAfter(round)) return closing;
    const partitionsAfterRound = progress.partitions.map((partition) => ({ ...partition }));
    next = inFlight(round + 1, trained.globalModelUri);
    let done: boolean;
    try {
      done = await closing;
    } catch (err) {
      next.cancel();
      await next.trained.catch(() => undefined);
      throw err;
    }
    if (done) {
      next.cancel();
      const showRoundReported = () => void (progress.partitions = partitionsAfterRound);
      run.draining = next.trained.then(showRoundReported, showRoundReported);
      return true;
    }
  }
}

/** Synchronous rounds one after the other, as runs started before `syncRounds` existed recorded them. */
async function syncRoundsInTurn(run: Run, continueAsNewDueAfter: (rounds: number) => boolean): Promise<boolean> {
  let done = false;
  do done = await closeRound(run, await trainRound(run, run.state.round + 1, run.state.globalModelUri));
  while (!done && !continueAsNewDueAfter(run.state.round));
  return done;
}

/**
 * Asynchronous training (FedAsync): every partition trains continuously, from the newest global model each time.
 * Each finished update is merged on its own, one at a time, with a weight that falls with its staleness (merges since
 * the global model it started from); one staler than `maxStaleness` is dropped. A round is `numWorkers` merged updates.
 * When the run ends or continues as new, the updates still training are cancelled. Returns whether the run is done.
 */
async function asyncRounds(run: Run, continueAsNewDue: () => boolean): Promise<boolean> {
  const { config, state, progress } = run;
  const count = state.partitions.length;
  const scope = new CancellationScope();
  let stopping = false;
  let done = false;
  let failure: { error: unknown } | undefined;
  let inRound: TrainPartitionResult[] = [];
  let droppedInRound = 0;
  let mergeSeconds = 0;
  let mergesTail: Promise<unknown> = Promise.resolve();
  const stop = () => {
    stopping = true;
    scope.cancel();
  };

  const merge = async (index: number, baseVersion: number, update: TrainPartitionResult) => {
    if (stopping) return;
    const staleness = state.globalVersion - baseVersion;
    if (isTooStale(staleness, config.async.maxStaleness)) {
      droppedInRound++;
      progress.droppedStaleUpdates = ++state.droppedStaleUpdates;
      return;
    }
    if (state.globalModelUri === null) {
      // The first update: every partition started from the same initial weights, so it stands for the global model.
      state.globalModelUri = update.modelUri;
    } else {
      const merged = await mergeUpdate({ globalModelUri: state.globalModelUri, updateModelUri: update.modelUri, weight: mixingWeight(config.async, staleness) });
      state.globalModelUri = merged.modelUri;
      mergeSeconds += merged.seconds;
    }
    state.globalVersion++;
    inRound.push(update);
    if (inRound.length < count) return;
    done = await closeRound(run, { globalModelUri: state.globalModelUri, trainLoss: weightedLoss(inRound), updates: inRound.length, skipped: [], droppedStale: droppedInRound, aggregationSeconds: mergeSeconds });
    [inRound, droppedInRound, mergeSeconds] = [[], 0, 0];
    if (done || continueAsNewDue()) stop();
  };
  // Merges (and the evaluations that close rounds) run one at a time, and are not cut short by stopping the lanes.
  const serialized = (work: () => Promise<void>) => {
    const result = mergesTail.then(() => CancellationScope.nonCancellable(work));
    mergesTail = result.catch(() => undefined);
    return result;
  };

  const lane = async (index: number) => {
    while (!stopping) {
      const baseVersion = state.globalVersion;
      progress.partitions[index]!.state = 'training';
      const update = await trainFrom(run, index, state.round + 1, state.globalModelUri);
      reported(run, index, update);
      await serialized(() => merge(index, baseVersion, update));
    }
  };
  await scope.run(() =>
    Promise.all(
      state.partitions.map(({ index }) =>
        lane(index).catch((error: unknown) => {
          if (!(isCancellation(error) && stopping)) failure ??= { error };
          stop();
        }),
      ),
    ),
  );
  if (failure) throw failure.error;
  return done;
}

/**
 * Data-parallel training: partitions the training images once, then trains a copy of the model on every partition
 * on `ml-train` workers and combines their weights into a global model, in synchronous rounds (FedAvg with a quorum
 * and a round timeout) or asynchronously (staleness-weighted merges). The global model is scored on the validation
 * split every round; the run stops after `rounds` or at the target, then scores the final model on the test split.
 * It continues as new every `roundsPerRun` rounds, carrying URIs and small figures only.
 */
export async function distributedTrain(input: DistributedTrainInput, carried?: DistributedRunState): Promise<DistributedTrainResult> {
  const progress: DistributedProgress = {
    stage: carried ? 'training' : 'partitioning',
    mode: 'sync',
    round: carried?.round ?? 0,
    rounds: 0,
    partitions: [],
    validationAccuracy: carried?.validation?.accuracy ?? null,
    validationLoss: carried?.validation?.loss ?? null,
    stragglers: [],
    skippedUpdates: carried?.skippedUpdates ?? 0,
    droppedStaleUpdates: carried?.droppedStaleUpdates ?? 0,
    runs: (carried?.runs ?? 0) + 1,
  };
  setHandler(distributedProgressQuery, () => progress);
  const config = parseWorkflowInput('distributedTrain', distributedTrainInputSchema, input);
  Object.assign(progress, { mode: config.mode, rounds: config.rounds });
  const stage = (value: DistributedProgress['stage']) => {
    progress.stage = value;
    upsertSearchAttributes([
      { key: ML_MODEL, value: config.modelName },
      { key: ML_STAGE, value },
    ]);
  };

  if (!carried) stage('partitioning');
  const state = carried ?? (await partition(config, Date.now()));
  state.runs++;
  progress.partitions = state.partitions.map(({ index, count }) => ({ index, images: count, state: 'waiting', lastLoss: null }));
  stage('training');

  const run: Run = { config, state, progress, records: [] };
  const firstRound = state.round;
  const continueAsNewDueAfter = (rounds: number) => {
    const { continueAsNewSuggested, historyLength } = workflowInfo();
    return continueAsNewSuggested || historyLength > EVENTS_PER_RUN || rounds - firstRound >= config.roundsPerRun;
  };
  let done: boolean;
  if (config.mode === 'async') done = await asyncRounds(run, () => continueAsNewDueAfter(state.round));
  else if (patched(SCORE_WHILE_NEXT_ROUND_TRAINS)) done = await syncRounds(run, continueAsNewDueAfter);
  else done = await syncRoundsInTurn(run, continueAsNewDueAfter);
  if (!done) {
    const historyUri = await storeRoundHistoryPart({ previousUri: state.historyUri, rounds: run.records });
    return continueAsNew<typeof distributedTrain>(input, { ...state, historyUri });
  }

  stage('evaluating');
  const modelUri = state.globalModelUri!;
  // Cancelled partitions stop at their next heartbeat: the run waits for that, rather than leave them training.
  const [evaluation, historyUri] = await Promise.all([
    evaluateModel({ modelName: config.modelName, modelUri, manifestUri: config.manifestUri }),
    writeRoundHistory({ previousUri: state.historyUri, rounds: run.records }),
    run.draining,
  ]);
  const report = await writeReport({ title: `distributedTrain ${workflowInfo().workflowId}: ${config.modelName}`, roundHistoryUri: historyUri, evaluationReportUri: evaluation.reportUri });
  stage('done');
  const validation = state.validation!;
  return {
    modelName: config.modelName,
    modelUri,
    mode: config.mode,
    numWorkers: config.numWorkers,
    trainSamples: state.partitions.reduce((sum, { count }) => sum + count, 0),
    rounds: state.round,
    reachedTarget: config.target.validationAccuracy !== null && validation.accuracy >= config.target.validationAccuracy,
    validationAccuracy: validation.accuracy,
    validationLoss: validation.loss,
    skippedUpdates: state.skippedUpdates,
    droppedStaleUpdates: state.droppedStaleUpdates,
    runs: state.runs,
    seconds: (Date.now() - state.startedAt) / 1000,
    partitionReportUri: state.partitionReportUri,
    historyUri,
    evaluation,
    ...report,
  };
}
