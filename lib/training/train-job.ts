import type { LayersModel, Optimizer } from '@tensorflow/tfjs';
import { openArtifactStore, type ArtifactStore, type ArtifactStoreDescription } from '../artifacts';
import { serveChildTask } from '../child-task';
import { settings } from '../config';
import { readManifest, type DatasetManifest } from '../datasets/manifest';
import { splitShards } from '../datasets/shards';
import { modelFromFiles, saveModel } from '../model-io';
import { buildModel } from '../models';
import type { ModelSpec, TrainingSpec } from '../schemas/model';
import type { Split } from '../split';
import { tensorflow, type BackendName, type TensorFlow } from '../tf';
import { batchesOf, epochOrder } from './batch-order';
import { bytesToLoad, checkStreamedEpochFits, chooseLoading, openSplitFeed, scoreFeed, splitTensorsKey, type DataLoading, type SplitFeed } from './split-feed';
import { initialTrainingState, loadCheckpoint, saveCheckpoint, type EpochRecord, type TrainingState } from './checkpoint';
import { extensionFor, type TrainingExtension, type TrainingExtensionSpec } from './extension';
import { learningRateAt } from './schedule';

export interface TrainJobInput {
  /** The store to read and write, as the parent process described it. */
  artifacts: ArtifactStoreDescription;
  manifestUri: string;
  model: ModelSpec;
  training: TrainingSpec;
  /** Checkpoint to continue from (a retried attempt passes the last one it heartbeated). */
  resumeFrom?: string;
  /** Start from this stored layers model (architecture and weights) instead of building `model` afresh. */
  initialModelUri?: string;
  /** What this job does differently from plain supervised training. */
  extension?: TrainingExtensionSpec;
  /** Stop after this many optimizer steps, counted across epochs: as many epochs as that takes, `training.epochs` aside. */
  maxSteps?: number;
  /** Seed of the batch order (default `training.seed`, which also seeds the initial weights). */
  shuffleSeed?: number;
  /**
   * Stop once this many epochs are done, as if `training.epochs` were trained in steps (the learning-rate schedule
   * still spans `training.epochs`); the result's `checkpointUri` continues from there.
   */
  untilEpoch?: number;
  /** Least time between progress reports within an epoch (default 500 ms). */
  progressIntervalMs?: number;
  /** Score the validation split after each epoch (default true); without it the validation split is not loaded. */
  validate?: boolean;
}

export interface TrainProgress {
  /** 1-based epoch in progress, and batches done in it. */
  epoch: number;
  epochs: number;
  batch: number;
  batchesPerEpoch: number;
  loss: number;
  accuracy: number;
  samplesPerSecond: number;
  /** Time left at this attempt's pace, when known. */
  etaSeconds: number | null;
  learningRate: number;
  /** Latest checkpoint written and where it continues from (1-based epoch, batches done in it); a retry resumes from it. */
  checkpoint?: CheckpointRef;
  /** Set when an epoch has just finished. */
  finishedEpoch?: EpochRecord;
  /** Where this attempt resumed from, when it did. */
  resumedFrom?: { epoch: number; batch: number };
}

export interface CheckpointRef {
  uri: string;
  bytes: number;
  epoch: number;
  batch: number;
}

export interface TrainJobResult {
  modelUri: string;
  modelBytes: number;
  backend: BackendName;
  parameterCount: number;
  trainSamples: number;
  history: EpochRecord[];
  /** The epoch whose weights are returned: the best one under early stopping, else the last. */
  bestEpoch: EpochRecord;
  stoppedEarly: boolean;
  resumes: { epoch: number; batch: number }[];
  /** The last checkpoint, which `resumeFrom` continues from. */
  checkpointUri: string;
  samplesPerSecond: number;
  trainingSeconds: number;
  /** Where this attempt's wall time went, in seconds. */
  timings: TrainJobTimings;
  /** What the extension reported when training ended. */
  extension?: Record<string, unknown>;
  /** How this attempt fed the images: whole splits in memory, or streamed from the shards. */
  dataLoading: DataLoading;
  /** Resident memory of the process once TensorFlow and the model were loaded, before any images. */
  baselineRssBytes: number;
  /** Peak resident memory of the process that trained (a warm process's peak may come from an earlier job). */
  peakRssBytes: number;
}

export interface TrainJobTimings {
  /** Starting the process and loading TensorFlow, when this job was the process's first (0 in a warm process). */
  startup: number;
  /** Reading the manifest and labels, and the splits' shards into tensors (or opening them to stream). */
  load: number;
  /** Building or restoring the model and compiling it. */
  build: number;
  /** Optimizer steps. */
  train: number;
  /** Scoring the validation split after each epoch. */
  validate: number;
  /** Writing checkpoints and models. */
  store: number;
}

/** Training stopped because the loss stopped being a finite number: retrying the same run would diverge again. */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
}

/** The checkpoint to resume from is missing or is not a training checkpoint. */
export class InvalidCheckpointError extends Error {
  override name = 'InvalidCheckpointError';
}

/** Training stopped on request (cancellation) after checkpointing. */
export class TrainingStoppedError extends Error {
  override name = 'TrainingStoppedError';
}

/**
 * Progress is reported after every step that can take a while (loading, each batch at most this often, validation,
 * each checkpoint): the activity heartbeats only on these reports, so its 20 s heartbeat timeout must exceed the
 * longest single batch, validation pass or checkpoint write.
 */
const PROGRESS_INTERVAL_MS = 500;

/** One attempt at a training job: its data, model and optimizer, where training stands, and how it reports. */
interface TrainingRun {
  tf: TensorFlow;
  backend: BackendName;
  store: ArtifactStore;
  input: TrainJobInput;
  report: (progress: TrainProgress) => void;
  train: SplitFeed;
  validation: SplitFeed | undefined;
  /** Images in each shard of the training split, which the batch order is drawn from. */
  trainShardCounts: number[];
  baselineRssBytes: number;
  model: LayersModel;
  optimizer: Optimizer;
  extension: TrainingExtension;
  state: TrainingState;
  batchesPerEpoch: number;
  /** Epochs this job trains for, the last one partial when `maxSteps` ends it. */
  epochs: number;
  /** Optimizer steps this job takes in all. */
  totalSteps: number;
  learningRate: number;
  checkpoint: CheckpointRef | undefined;
  resumedFrom: TrainProgress['resumedFrom'];
  lastCheckpointAt: number;
  lastReportAt: number;
  samplesThisAttempt: number;
  secondsThisAttempt: number;
  timings: TrainJobTimings;
}

let startupCounted = false;

/** Runs `work`, adding the seconds it took to `timings[phase]`. */
function timed<T>(timings: TrainJobTimings, phase: keyof TrainJobTimings, work: () => T): T {
  const started = performance.now();
  const add = () => (timings[phase] += (performance.now() - started) / 1000);
  const result = work();
  if (result instanceof Promise) return result.finally(add) as T;
  add();
  return result;
}

/** Trains as the input says; SIGTERM stops it after the current batch, with a checkpoint. */
export async function trainJob(input: TrainJobInput, reportProgress: (p: TrainProgress) => void): Promise<TrainJobResult> {
  let stopRequested = false;
  const requestStop = () => (stopRequested = true);
  process.on('SIGTERM', requestStop);
  let run: TrainingRun | undefined;
  try {
    run = await startRun(input, reportProgress);
    const lastEpoch = Math.min(run.epochs, input.untilEpoch ?? Infinity);
    while (run.state.epoch < lastEpoch && !run.state.stoppedEarly) {
      const seconds = await runEpoch(run, () => stopRequested);
      await endEpoch(run, seconds);
    }
    return await finish(run);
  } finally {
    process.off('SIGTERM', requestStop);
    // A warm process serves more jobs: free this one's model and optimizer (in-memory data stays cached).
    run?.model.dispose();
    run?.optimizer.dispose();
    await run?.train.close();
    await run?.validation?.close();
  }
}

/** Loads the dataset, then builds the model or restores it from the checkpoint to resume from. */
async function startRun(input: TrainJobInput, report: TrainingRun['report']): Promise<TrainingRun> {
  const { tf, backend } = tensorflow();
  // The first job in a process pays for starting it and loading TensorFlow: performance.now() counts from the process's start.
  const timings: TrainJobTimings = { startup: startupCounted ? 0 : performance.now() / 1000, load: 0, build: 0, train: 0, validate: 0, store: 0 };
  startupCounted = true;
  const store = openArtifactStore(input.artifacts);
  const manifest = await timed(timings, 'load', () => readManifest(store, input.manifestUri));
  const trainShardCounts = splitShards(manifest, 'train').map((shard) => shard.count);
  const trainCount = trainShardCounts.reduce((n, c) => n + c, 0);
  const batchesPerEpoch = Math.ceil(trainCount / input.training.batchSize);
  const epochs = input.maxSteps ? Math.ceil(input.maxSteps / batchesPerEpoch) : input.training.epochs;
  const { extension, model, optimizer, state, resumedFrom } = await timed(timings, 'build', async () => {
    const extension = await extensionFor({ tf, store, manifest, train: { count: trainCount }, batchesPerEpoch }, input.extension);
    const built = await buildOrResume(tf, store, input, manifest, extension);
    await extension.start?.(built.model, built.state);
    return { extension, ...built };
  });
  const validate = (input.validate ?? true) && manifest.counts.validation > 0;
  const baselineRssBytes = process.memoryUsage().rss;
  const splits: Split[] = validate ? ['train', 'validation'] : ['train'];
  const toLoad = bytesToLoad(
    splits.map((split) => splitTensorsKey(manifest, split)),
    trainCount + (validate ? manifest.counts.validation : 0),
    manifest.shape.reduce((a, b) => a * b, 1),
    input.training.batchSize,
  );
  const loading = chooseLoading(input.training.dataLoading, memoryBudget(input.training.memoryBudgetBytes), baselineRssBytes, toLoad);
  const { train, validation } = await timed(timings, 'load', async () => {
    if (loading === 'stream') checkStreamedEpochFits(store, manifest, input.training.shuffleWindow);
    return openFeeds(tf, store, manifest, loading, validate);
  }).catch((err) => {
    // A warm process serves more jobs: what this one built must not outlive it.
    model.dispose();
    optimizer.dispose();
    throw err;
  });
  const run: TrainingRun = {
    tf,
    backend,
    store,
    input,
    report,
    train,
    validation,
    trainShardCounts,
    baselineRssBytes,
    model,
    optimizer,
    extension,
    state,
    batchesPerEpoch,
    epochs,
    totalSteps: input.maxSteps ?? epochs * batchesPerEpoch,
    learningRate: input.training.learningRate,
    checkpoint: resumedFrom && { uri: input.resumeFrom!, bytes: 0, ...resumedFrom },
    resumedFrom,
    lastCheckpointAt: performance.now(),
    lastReportAt: performance.now(),
    samplesThisAttempt: 0,
    secondsThisAttempt: 0,
    timings,
  };
  report(progressOf(run));
  return run;
}

async function openFeeds(tf: TensorFlow, store: ArtifactStore, manifest: DatasetManifest, loading: DataLoading, validate: boolean) {
  const train = await openSplitFeed(tf, store, manifest, 'train', loading);
  try {
    return { train, validation: validate ? await openSplitFeed(tf, store, manifest, 'validation', loading) : undefined };
  } catch (err) {
    await train.close();
    throw err;
  }
}

/** The memory budget of this job: the worker's, lowered by the input's. */
function memoryBudget(requested: number | null): number | null {
  const budgets = [settings().memoryBudgetBytes, requested].filter((b): b is number => b !== null);
  return budgets.length ? Math.min(...budgets) : null;
}

async function buildOrResume(tf: TensorFlow, store: ArtifactStore, input: TrainJobInput, manifest: DatasetManifest, extension: TrainingExtension) {
  if (input.resumeFrom) {
    const checkpoint = await loadCheckpoint(tf, store, input.resumeFrom).catch((err: NodeJS.ErrnoException) => {
      // A read that failed for another reason (EIO, EMFILE) is about this attempt: the retry may read it.
      if (err.code && err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw err;
      throw new InvalidCheckpointError(`${input.resumeFrom} is not a training checkpoint in the artifact store: ${err.message}`);
    });
    const optimizer = compile(tf, checkpoint.model, input.training.learningRate, extension);
    await optimizer.setWeights(checkpoint.optimizerWeights);
    const resumedFrom = { epoch: checkpoint.state.epoch + 1, batch: checkpoint.state.batch };
    checkpoint.state.resumes.push(resumedFrom);
    return { model: checkpoint.model, optimizer, state: checkpoint.state, resumedFrom };
  }
  const [height, width, channels] = manifest.shape;
  const initial = input.initialModelUri
    ? await modelFromFiles(tf, await store.readDirectory(input.initialModelUri))
    : buildModel(tf, input.model, { height, width, channels }, manifest.classes.length, input.training.seed);
  const model = (await extension.prepareModel?.(initial)) ?? initial;
  return { model, optimizer: compile(tf, model, input.training.learningRate, extension), state: initialTrainingState(), resumedFrom: undefined };
}

function compile(tf: TensorFlow, model: LayersModel, learningRate: number, extension: TrainingExtension): Optimizer {
  const optimizer = tf.train.adam(learningRate);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'], ...extension.compileArgs?.() });
  return optimizer;
}

function progressOf(run: TrainingRun, extra: Partial<TrainProgress> = {}): TrainProgress {
  const { state } = run;
  const { batchSize } = run.input.training;
  const samplesPerSecond = run.secondsThisAttempt > 0 ? run.samplesThisAttempt / run.secondsThisAttempt : 0;
  const batchesLeft = run.totalSteps - state.epoch * run.batchesPerEpoch - state.batch;
  return {
    epoch: state.epoch + 1,
    epochs: run.epochs,
    batch: state.batch,
    batchesPerEpoch: run.batchesPerEpoch,
    loss: state.batch ? state.epochLossSum / state.batch : NaN,
    accuracy: state.batch ? state.epochAccuracySum / state.batch : NaN,
    samplesPerSecond,
    etaSeconds: samplesPerSecond > 0 ? (batchesLeft * batchSize) / samplesPerSecond : null,
    learningRate: run.learningRate,
    checkpoint: run.checkpoint,
    resumedFrom: run.resumedFrom,
    ...extra,
  };
}

function report(run: TrainingRun, extra: Partial<TrainProgress> = {}): void {
  run.report(progressOf(run, extra));
  run.lastReportAt = performance.now();
}

async function writeCheckpoint(run: TrainingRun): Promise<void> {
  const saved = await timed(run.timings, 'store', () => saveCheckpoint(run.tf, run.store, run.model, run.optimizer, run.state));
  run.checkpoint = { ...saved, epoch: run.state.epoch + 1, batch: run.state.batch };
  run.lastCheckpointAt = performance.now();
}

/**
 * Trains the current epoch's remaining batches (up to the job's last step), in its seeded order, checkpointing every
 * `checkpointEverySeconds`; returns the seconds it took.
 */
async function runEpoch(run: TrainingRun, stopRequested: () => boolean): Promise<number> {
  const { tf, state, train, input } = run;
  const { batchSize, seed, shuffleWindow } = input.training;
  const epoch = state.epoch;
  const batches = Math.min(run.batchesPerEpoch, run.totalSteps - epoch * run.batchesPerEpoch);
  run.learningRate = learningRateAt(input.training.learningRateSchedule, input.training.learningRate, epoch, run.epochs);
  (run.optimizer as unknown as { learningRate: number }).learningRate = run.learningRate;
  // A resumed attempt draws the same order and continues at the checkpoint's batch.
  const order = epochOrder(run.trainShardCounts, shuffleWindow, input.shuffleSeed ?? seed, epoch);
  const epochStarted = performance.now();

  let batchStarted = performance.now();
  for await (const xs of train.batches(batchesOf(order, batchSize, state.batch, batches))) {
    const indices = order.subarray(state.batch * batchSize, Math.min((state.batch + 1) * batchSize, train.count));
    const ys = tf.tidy(() => {
      const idx = tf.tensor1d(indices, 'int32');
      return run.extension.batchTargets?.(idx, train.labels) ?? tf.gather(train.labels, idx);
    });
    const [loss, accuracy] = (await run.model.trainOnBatch(xs, ys)) as number[];
    tf.dispose([xs, ys]);
    run.extension.afterStep?.(run.model, epoch * run.batchesPerEpoch + state.batch + 1);
    if (!Number.isFinite(loss)) {
      throw new TrainingDivergedError(
        `Training diverged: loss became ${loss} at epoch ${epoch + 1}, batch ${state.batch + 1}; lower training.learningRate (now ${run.learningRate}).`,
      );
    }
    // Counted from the end of the previous step, so that waiting for a streamed batch counts too.
    run.secondsThisAttempt += (performance.now() - batchStarted) / 1000;
    run.samplesThisAttempt += indices.length;
    state.batch++;
    state.epochLossSum += loss!;
    state.epochAccuracySum += accuracy!;
    const now = performance.now();
    if (stopRequested()) {
      await writeCheckpoint(run);
      report(run);
      throw new TrainingStoppedError(`Training stopped on request at epoch ${epoch + 1}, batch ${state.batch}; checkpoint ${run.checkpoint!.uri}`);
    }
    if (now - run.lastCheckpointAt >= input.training.checkpointEverySeconds * 1000 && state.batch < batches) {
      await writeCheckpoint(run);
      report(run);
    } else if (now - run.lastReportAt >= (input.progressIntervalMs ?? PROGRESS_INTERVAL_MS)) {
      report(run);
    }
    batchStarted = performance.now();
  }
  return (performance.now() - epochStarted) / 1000;
}

/** Records the finished epoch, scores it on the validation split (tracking the best model, stopping early), checkpoints. */
async function endEpoch(run: TrainingRun, seconds: number): Promise<void> {
  const { tf, state, validation } = run;
  const batches = state.batch;
  const record: EpochRecord = {
    epoch: state.epoch + 1,
    learningRate: run.learningRate,
    loss: state.epochLossSum / batches,
    accuracy: state.epochAccuracySum / batches,
    seconds,
  };
  if (validation) {
    await timed(run.timings, 'validate', async () => {
      // Streamed batches are the size of training's, so that memory stays bounded by the batch size whatever the split's.
      const batchSize = validation.loading === 'stream' ? run.input.training.batchSize : 512;
      const { loss, accuracy } = await scoreFeed(tf, run.model, validation, batchSize);
      record.validationLoss = loss;
      record.validationAccuracy = accuracy;
    });
    report(run);
    trackBestModel(record, run.input.training.earlyStopping, state, await timed(run.timings, 'store', () => saveModel(tf, run.store, run.model)));
  }
  record.endedAt = Date.now();
  state.history.push(record);
  state.epoch++;
  state.batch = 0;
  state.epochLossSum = 0;
  state.epochAccuracySum = 0;
  await writeCheckpoint(run);
  // Reported as the finished epoch's last position, not the next epoch's first.
  report(run, { epoch: record.epoch, batch: batches, loss: record.loss, accuracy: record.accuracy, finishedEpoch: record });
}

/** Stores the model to return: with early stopping the best epoch's weights, as Keras' restore_best_weights gives. */
async function finish(run: TrainingRun): Promise<TrainJobResult> {
  const { state } = run;
  const extension = await run.extension.finish?.(run.model);
  const best = run.input.training.earlyStopping && state.bestModel;
  const model = best || (await timed(run.timings, 'store', () => saveModel(run.tf, run.store, run.model)));
  return {
    modelUri: model.uri,
    modelBytes: model.bytes,
    backend: run.backend,
    parameterCount: run.model.countParams(),
    trainSamples: run.train.count,
    history: state.history,
    bestEpoch: best ? state.history.find((e) => e.epoch === best.epoch)! : state.history.at(-1)!,
    stoppedEarly: state.stoppedEarly,
    resumes: state.resumes,
    checkpointUri: run.checkpoint!.uri,
    samplesPerSecond: run.secondsThisAttempt > 0 ? run.samplesThisAttempt / run.secondsThisAttempt : 0,
    trainingSeconds: state.history.reduce((s, e) => s + e.seconds, 0),
    timings: { ...run.timings, train: run.secondsThisAttempt },
    ...(extension ? { extension } : {}),
    dataLoading: run.train.loading,
    baselineRssBytes: run.baselineRssBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

function trackBestModel(record: EpochRecord, earlyStopping: TrainingSpec['earlyStopping'], state: TrainingState, current: { uri: string; bytes: number }): void {
  const minDelta = earlyStopping?.minDelta ?? 0;
  // Scores are "lower is better": accuracy enters negated.
  const score = earlyStopping?.monitor === 'validationAccuracy' ? -record.validationAccuracy! : record.validationLoss!;
  if (state.bestScore === null || score < state.bestScore - minDelta) {
    state.bestScore = score;
    state.bestModel = { uri: current.uri, bytes: current.bytes, epoch: record.epoch };
    state.epochsWithoutImprovement = 0;
    return;
  }
  state.epochsWithoutImprovement++;
  if (earlyStopping && state.epochsWithoutImprovement >= earlyStopping.patience) state.stoppedEarly = true;
}

if (require.main === module) serveChildTask(trainJob);
