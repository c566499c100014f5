import { artifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { loadSplit } from '../lib/datasets/shards';
import { modelTestAccuracy } from '../lib/metrics';
import { loadModel } from '../lib/model-io';
import type { Split } from '../lib/split';
import { tensorflow } from '../lib/tf';

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
  const model = await loadModel(tf, store, input.modelUri);
  const data = await loadSplit(tf, store, manifest, split);
  try {
    const probabilities = model.predict(data.images) as import('@tensorflow/tfjs').Tensor;
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
    const report: EvaluationReport = {
      accuracy: data.count ? correct / data.count : 0,
      loss,
      count: data.count,
      modelUri: input.modelUri,
      manifestUri: input.manifestUri,
      split,
      classes: manifest.classes,
      confusion,
      perClass,
    };
    const { uri } = await store.putBlob(Buffer.from(JSON.stringify(report, null, 2)), '.json');
    if (split === 'test') modelTestAccuracy.set({ model: input.modelName }, report.accuracy);
    return { accuracy: report.accuracy, loss, count: data.count, reportUri: uri };
  } finally {
    tf.dispose([data.images, data.labels]);
    model.dispose();
  }
}
