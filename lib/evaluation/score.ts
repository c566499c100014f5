import type { SplitArrays } from '../datasets/shards';
import { emptyConfusion, tallyAnswers, type ConfusionMatrix } from './classification';
import type { ServingModel } from './serving-model';

export interface SplitScore {
  confusion: ConfusionMatrix;
  /** Mean categorical cross-entropy over the split. */
  loss: number;
}

/** Images per `predict` call: small enough that progress is reported often, large enough to keep the cores busy. */
const PREDICT_BATCH = 256;

/** Probabilities are clipped to [EPSILON, 1 - EPSILON] before the logarithm, as Keras and TensorFlow.js do. */
const EPSILON = 1e-7;

/** Predicted classes (first highest probability) and summed cross-entropy of one batch of `classes`-wide rows. */
function scoreBatch(probabilities: Float32Array, labels: Int32Array, classes: number): { predicted: Int32Array; lossSum: number } {
  const predicted = new Int32Array(labels.length);
  let lossSum = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = probabilities.subarray(i * classes, (i + 1) * classes);
    let best = 0;
    let total = 0;
    for (let c = 0; c < classes; c++) {
      total += row[c]!;
      if (row[c]! > row[best]!) best = c;
    }
    predicted[i] = best;
    lossSum -= Math.log(Math.min(1 - EPSILON, Math.max(EPSILON, row[labels[i]!]! / total)));
  }
  return { predicted, lossSum };
}

/** Predicts every image of a split, a batch at a time, calling `onBatch` with the images done after each. */
export async function scoreSplit(model: ServingModel, data: SplitArrays, classes: number, onBatch: (imagesDone: number) => void): Promise<SplitScore> {
  const confusion = emptyConfusion(classes);
  const imageSize = data.images.length / data.count;
  let lossSum = 0;
  for (let start = 0; start < data.count; start += PREDICT_BATCH) {
    const size = Math.min(PREDICT_BATCH, data.count - start);
    const probabilities = await model.predict(data.images.subarray(start * imageSize, (start + size) * imageSize), size);
    const labels = data.labels.subarray(start, start + size);
    const batch = scoreBatch(probabilities, labels, classes);
    tallyAnswers(confusion, labels, batch.predicted);
    lossSum += batch.lossSum;
    onBatch(start + size);
  }
  return { confusion, loss: data.count ? lossSum / data.count : 0 };
}
