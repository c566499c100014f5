import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { artifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { loadSplit } from '../lib/datasets/shards';
import { modelTestAccuracy } from '../lib/metrics';
import { modelFromFiles } from '../lib/model-io';
import type { Split } from '../lib/split';
import { tensorflow } from '../lib/tf';
import { invalidInput } from '../lib/validate';

export interface EvaluateModelInput {
  modelName: string;
  modelUri: string;
  manifestUri: string;
  split?: Split;
}

export interface EvaluationSummary {
  accuracy: number;
  loss: number;
  count: number;
  parameterCount: number;
  modelBytes: number;
  /** Median inference latency for one image and for a batch of up to 256. */
  latencyMs: { single: number; batch: number; batchSize: number };
  reportUri: string;
}

export interface EvaluationReport extends Omit<EvaluationSummary, 'reportUri'> {
  modelUri: string;
  manifestUri: string;
  split: Split;
  classes: string[];
  /** confusion[actual][predicted] */
  confusion: number[][];
  perClass: { precision: number; recall: number; f1: number }[];
}

/** Scores a stored model on one split of a dataset, stores the full report and returns a small summary. */
export async function evaluateModel(input: EvaluateModelInput): Promise<EvaluationSummary> {
  const split = input.split ?? 'test';
  const { tf } = tensorflow();
  const store = artifactStore();
  const manifest = await store.readJson<DatasetManifest>(input.manifestUri);
  if (manifest.counts[split] === 0) throw invalidInput('manifestUri', `the dataset has no ${split} images to evaluate on`);
  const modelFiles = await store.readDirectory(input.modelUri);
  const model = await modelFromFiles(tf, modelFiles);
  const data = await loadSplit(tf, store, manifest, split);
  try {
    const probabilities = model.predict(data.images) as Tensor;
    const predicted = Array.from(await probabilities.argMax(-1).data());
    const actual = Array.from(await data.labels.argMax(-1).data());
    const loss = (await tf.metrics.categoricalCrossentropy(data.labels, probabilities).mean().data())[0]!;
    probabilities.dispose();
    const k = manifest.classes.length;
    const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    actual.forEach((a, i) => confusion[a]![predicted[i]!]!++);
    const correct = confusion.reduce((n, row, i) => n + row[i]!, 0);
    const perClass = confusion.map((row, c) => {
      const truePositives = row[c]!;
      const predictedAsC = confusion.reduce((n, r) => n + r[c]!, 0);
      const actualC = row.reduce((a, b) => a + b, 0);
      const precision = predictedAsC ? truePositives / predictedAsC : 0;
      const recall = actualC ? truePositives / actualC : 0;
      return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 };
    });
    const summary: Omit<EvaluationSummary, 'reportUri'> = {
      accuracy: data.count ? correct / data.count : 0,
      loss,
      count: data.count,
      parameterCount: model.countParams(),
      modelBytes: Object.values(modelFiles).reduce((n, f) => n + f.byteLength, 0),
      latencyMs: measureLatency(model, data.images),
    };
    const report: EvaluationReport = { ...summary, modelUri: input.modelUri, manifestUri: input.manifestUri, split, classes: manifest.classes, confusion, perClass };
    const { uri } = await store.putBlob(Buffer.from(JSON.stringify(report, null, 2)), '.json');
    if (split === 'test') modelTestAccuracy.set({ model: input.modelName }, summary.accuracy);
    return { ...summary, reportUri: uri };
  } finally {
    tf.dispose([data.images, data.labels]);
    model.dispose();
  }
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/** Median wall time of `model.predict` on one image and on a batch, after a warm-up call of each. */
function measureLatency(model: LayersModel, images: Tensor): EvaluationSummary['latencyMs'] {
  const time = (input: Tensor, repeats: number) => {
    const runs: number[] = [];
    for (let i = 0; i <= repeats; i++) {
      const started = performance.now();
      const output = model.predict(input) as Tensor;
      output.dataSync();
      output.dispose();
      if (i > 0) runs.push(performance.now() - started);
    }
    return median(runs);
  };
  const batchSize = Math.min(256, images.shape[0]!);
  const single = images.slice(0, 1);
  const batch = images.slice(0, batchSize);
  try {
    return { single: time(single, 30), batch: time(batch, 5), batchSize };
  } finally {
    single.dispose();
    batch.dispose();
  }
}
