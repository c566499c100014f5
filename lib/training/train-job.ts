import type { LayersModel, Optimizer, Scalar } from '@tensorflow/tfjs';
import { LocalArtifactStore } from '../artifacts';
import { serveChildTask } from '../child-task';
import type { DatasetManifest } from '../datasets/manifest';
import { loadSplit } from '../datasets/shards';
import { saveModel } from '../model-io';
import { buildModel } from '../models';
import { seededPermutation } from '../random';
import type { ModelSpec, TrainingSpec } from '../schemas/model';
import { tensorflow, type BackendName, type TensorFlow } from '../tf';
import { initialTrainingState, loadCheckpoint, saveCheckpoint, type EpochRecord, type TrainingState } from './checkpoint';
import { learningRateAt } from './schedule';

export interface TrainJobInput {
  artifactRoot: string;
  manifestUri: string;
  model: ModelSpec;
  training: TrainingSpec;
  /** Checkpoint to continue from (a retried attempt passes the last one it heartbeated). */
  resumeFrom?: string;
  /** Least time between progress reports within an epoch (default 500 ms). */
  progressIntervalMs?: number;
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
  /** The epoch whose weights `modelUri` holds: the best one when early stopping kept it, else the last. */
  bestEpoch: EpochRecord;
  stoppedEarly: boolean;
  resumes: { epoch: number; batch: number }[];
  samplesPerSecond: number;
  trainingSeconds: number;
}

/** Training stopped because the loss stopped being a finite number: retrying the same run would diverge again. */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
}

/** Training stopped on request (cancellation) after checkpointing. */
export class TrainingStoppedError extends Error {
  override name = 'TrainingStoppedError';
}

const PROGRESS_INTERVAL_MS = 500;

function compile(tf: TensorFlow, model: LayersModel, learningRate: number): Optimizer {
  const optimizer = tf.train.adam(learningRate);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return optimizer;
}

/** Trains as the input says; SIGTERM stops it after the current batch, with a checkpoint. */
export async function trainJob(input: TrainJobInput, reportProgress: (p: TrainProgress) => void): Promise<TrainJobResult> {
  let stopRequested = false;
  const requestStop = () => (stopRequested = true);
  process.on('SIGTERM', requestStop);
  try {
    return await train(input, reportProgress, () => stopRequested);
  } finally {
    process.off('SIGTERM', requestStop);
  }
}

async function train(input: TrainJobInput, reportProgress: (p: TrainProgress) => void, stopRequested: () => boolean): Promise<TrainJobResult> {
  const { tf, backend } = tensorflow();
  const store = new LocalArtifactStore(input.artifactRoot);
  const manifest = await store.readJson<DatasetManifest>(input.manifestUri);
  const train = await loadSplit(tf, store, manifest, 'train');
  const validation = manifest.counts.validation > 0 ? await loadSplit(tf, store, manifest, 'validation') : undefined;
  const [height, width, channels] = manifest.shape;
  const { epochs, batchSize, seed } = input.training;

  let model: LayersModel;
  let optimizer: Optimizer;
  let state: TrainingState;
  let resumedFrom: TrainProgress['resumedFrom'];
  if (input.resumeFrom) {
    const checkpoint = await loadCheckpoint(tf, store, input.resumeFrom);
    model = checkpoint.model;
    state = checkpoint.state;
    optimizer = compile(tf, model, input.training.learningRate);
    await optimizer.setWeights(checkpoint.optimizerWeights);
    resumedFrom = { epoch: state.epoch + 1, batch: state.batch };
    state.resumes.push(resumedFrom);
  } else {
    model = buildModel(tf, input.model, { height, width, channels }, manifest.classes.length, seed);
    optimizer = compile(tf, model, input.training.learningRate);
    state = initialTrainingState();
  }

  const batchesPerEpoch = Math.ceil(train.count / batchSize);
  let checkpoint: CheckpointRef | undefined = resumedFrom && { uri: input.resumeFrom!, bytes: 0, ...resumedFrom };
  let lastCheckpointAt = performance.now();
  let lastReportAt = 0;
  let samplesThisAttempt = 0;
  let secondsThisAttempt = 0;
  const writeCheckpoint = async () => {
    const saved = await saveCheckpoint(tf, store, model, optimizer, state);
    checkpoint = { ...saved, epoch: state.epoch + 1, batch: state.batch };
    lastCheckpointAt = performance.now();
  };

  while (state.epoch < epochs && !state.stoppedEarly) {
    const epoch = state.epoch;
    const learningRate = learningRateAt(input.training.learningRateSchedule, input.training.learningRate, epoch, epochs);
    (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
    const order = seededPermutation(train.count, seed * 1000 + epoch);
    const epochStarted = performance.now();
    const progress = (extra: Partial<TrainProgress> = {}): TrainProgress => ({
      epoch: epoch + 1,
      epochs,
      batch: state.batch,
      batchesPerEpoch,
      loss: state.batch ? state.epochLossSum / state.batch : NaN,
      accuracy: state.batch ? state.epochAccuracySum / state.batch : NaN,
      samplesPerSecond: secondsThisAttempt > 0 ? samplesThisAttempt / secondsThisAttempt : 0,
      learningRate,
      checkpoint,
      resumedFrom,
      ...extra,
    });

    while (state.batch < batchesPerEpoch) {
      const indices = order.subarray(state.batch * batchSize, Math.min((state.batch + 1) * batchSize, train.count));
      const batchStarted = performance.now();
      const [xs, ys] = tf.tidy(() => {
        const idx = tf.tensor1d(indices, 'int32');
        return [tf.gather(train.images, idx), tf.gather(train.labels, idx)];
      });
      const [lossValue, accuracyValue] = (await model.trainOnBatch(xs!, ys!)) as number[];
      tf.dispose([xs!, ys!]);
      if (!Number.isFinite(lossValue)) {
        throw new TrainingDivergedError(
          `Training diverged: loss became ${lossValue} at epoch ${epoch + 1}, batch ${state.batch + 1}; lower training.learningRate (now ${learningRate}).`,
        );
      }
      secondsThisAttempt += (performance.now() - batchStarted) / 1000;
      samplesThisAttempt += indices.length;
      state.batch++;
      state.epochLossSum += lossValue!;
      state.epochAccuracySum += accuracyValue!;
      const now = performance.now();
      if (stopRequested()) {
        await writeCheckpoint();
        reportProgress(progress());
        throw new TrainingStoppedError(`Training stopped on request at epoch ${epoch + 1}, batch ${state.batch}; checkpoint ${checkpoint!.uri}`);
      }
      if (now - lastCheckpointAt >= input.training.checkpointEverySeconds * 1000 && state.batch < batchesPerEpoch) {
        await writeCheckpoint();
        reportProgress(progress());
        lastReportAt = now;
      } else if (now - lastReportAt >= (input.progressIntervalMs ?? PROGRESS_INTERVAL_MS)) {
        reportProgress(progress());
        lastReportAt = now;
      }
    }

    const record: EpochRecord = {
      epoch: epoch + 1,
      learningRate,
      loss: state.epochLossSum / batchesPerEpoch,
      accuracy: state.epochAccuracySum / batchesPerEpoch,
      seconds: (performance.now() - epochStarted) / 1000,
    };
    if (validation) {
      const [valLoss, valAccuracy] = model.evaluate(validation.images, validation.labels, { batchSize: 512 }) as Scalar[];
      record.validationLoss = (await valLoss!.data())[0];
      record.validationAccuracy = (await valAccuracy!.data())[0];
      tf.dispose([valLoss!, valAccuracy!]);
      trackBestModel(record, input.training.earlyStopping, state, await saveModel(tf, store, model));
    }
    state.history.push(record);
    state.epoch++;
    state.batch = 0;
    state.epochLossSum = 0;
    state.epochAccuracySum = 0;
    await writeCheckpoint();
    reportProgress({ ...progress(), batch: batchesPerEpoch, loss: record.loss, accuracy: record.accuracy, finishedEpoch: record });
  }

  // With early stopping the best epoch's weights are the result, as Keras' restore_best_weights gives.
  const keptBest = input.training.earlyStopping ? state.bestModel : null;
  const final = keptBest ?? (await saveModel(tf, store, model));
  return {
    modelUri: final.uri,
    modelBytes: final.bytes,
    backend,
    parameterCount: model.countParams(),
    trainSamples: train.count,
    history: state.history,
    bestEpoch: state.history.find((e) => e.epoch === keptBest?.epoch) ?? state.history.at(-1)!,
    stoppedEarly: state.stoppedEarly,
    resumes: state.resumes,
    samplesPerSecond: secondsThisAttempt > 0 ? samplesThisAttempt / secondsThisAttempt : 0,
    trainingSeconds: state.history.reduce((s, e) => s + e.seconds, 0),
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
