import { LocalArtifactStore } from '../artifacts';
import { serveChildTask } from '../child-task';
import type { DatasetManifest } from '../datasets/manifest';
import { loadSplit } from '../datasets/shards';
import { saveModel } from '../model-io';
import { buildModel } from '../models';
import { seededPermutation } from '../random';
import type { ModelSpec, TrainingSpec } from '../schemas/model';
import { tensorflow, type BackendName } from '../tf';

export interface TrainJobInput {
  artifactRoot: string;
  manifestUri: string;
  model: ModelSpec;
  training: TrainingSpec;
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batchesPerEpoch: number;
  loss: number;
  samplesPerSecond: number;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  validationLoss?: number;
  validationAccuracy?: number;
  seconds: number;
}

export interface TrainJobResult {
  modelUri: string;
  modelBytes: number;
  backend: BackendName;
  parameterCount: number;
  trainSamples: number;
  history: EpochRecord[];
  samplesPerSecond: number;
  trainingSeconds: number;
}

/** Training stopped because the loss stopped being a finite number: retrying the same run would diverge again. */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
}

const PROGRESS_INTERVAL_MS = 500;

export async function trainJob(input: TrainJobInput, reportProgress: (p: TrainProgress) => void): Promise<TrainJobResult> {
  const { tf, backend } = tensorflow();
  const store = new LocalArtifactStore(input.artifactRoot);
  const manifest = await store.readJson<DatasetManifest>(input.manifestUri);
  const train = await loadSplit(tf, store, manifest, 'train');
  const validation = manifest.counts.validation > 0 ? await loadSplit(tf, store, manifest, 'validation') : undefined;
  const [height, width, channels] = manifest.shape;
  const { epochs, batchSize, learningRate, seed } = input.training;
  const model = buildModel(tf, input.model, { height, width, channels }, manifest.classes.length, seed);
  model.compile({ optimizer: tf.train.adam(learningRate), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });

  const batchesPerEpoch = Math.ceil(train.count / batchSize);
  const history: EpochRecord[] = [];
  let trainingSeconds = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = tf.tensor1d(seededPermutation(train.count, seed * 1000 + epoch), 'int32');
    const xs = tf.gather(train.images, order);
    const ys = tf.gather(train.labels, order);
    order.dispose();
    const started = performance.now();
    let lastReport = 0;
    const fit = await model.fit(xs, ys, {
      batchSize,
      epochs: 1,
      shuffle: false,
      verbose: 0,
      validationData: validation ? [validation.images, validation.labels] : undefined,
      callbacks: {
        onBatchEnd: async (batch, logs) => {
          const loss = logs?.loss ?? NaN;
          if (!Number.isFinite(loss)) {
            throw new TrainingDivergedError(`Training diverged: loss became ${loss} at epoch ${epoch + 1}, batch ${batch + 1}; lower training.learningRate.`);
          }
          const now = performance.now();
          if (now - lastReport >= PROGRESS_INTERVAL_MS) {
            lastReport = now;
            const seen = Math.min((batch + 1) * batchSize, train.count);
            reportProgress({ epoch: epoch + 1, epochs, batch: batch + 1, batchesPerEpoch, loss, samplesPerSecond: seen / ((now - started) / 1000) });
          }
        },
      },
    });
    xs.dispose();
    ys.dispose();
    const seconds = (performance.now() - started) / 1000;
    trainingSeconds += seconds;
    const last = (key: string) => (fit.history[key] as number[] | undefined)?.at(-1);
    const record: EpochRecord = { epoch: epoch + 1, loss: last('loss')!, accuracy: last('acc')!, seconds };
    if (validation) Object.assign(record, { validationLoss: last('val_loss'), validationAccuracy: last('val_acc') });
    if (!Number.isFinite(record.loss)) throw new TrainingDivergedError(`Training diverged: epoch ${epoch + 1} ended with loss ${record.loss}; lower training.learningRate.`);
    history.push(record);
    reportProgress({ epoch: epoch + 1, epochs, batch: batchesPerEpoch, batchesPerEpoch, loss: record.loss, samplesPerSecond: train.count / seconds });
  }
  const saved = await saveModel(tf, store, model);
  return {
    modelUri: saved.uri,
    modelBytes: saved.bytes,
    backend,
    parameterCount: model.countParams(),
    trainSamples: train.count,
    history,
    samplesPerSecond: (train.count * epochs) / trainingSeconds,
    trainingSeconds,
  };
}

if (require.main === module) serveChildTask(trainJob);
