import { emptyConfusion, tallyAnswers, type ConfusionMatrix } from './classification';
import type { ServingModel } from './serving-model';

export interface SplitScore {
  confusion: ConfusionMatrix;
  /** Mean categorical cross-entropy over the split. */
  loss: number;
}

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

/** One batch of a split: NHWC pixels and the class index of each image. */
export interface ImageBatch {
  images: Float32Array;
  labels: Int32Array;
}

/** Predicts every image of a split, batch by batch, calling `onBatch` with the images done after each. */
export async function scoreSplit(model: ServingModel, batches: AsyncIterable<ImageBatch>, classes: number, onBatch: (imagesDone: number) => void): Promise<SplitScore> {
  const confusion = emptyConfusion(classes);
  let lossSum = 0;
  let count = 0;
  for await (const { images, labels } of batches) {
    const probabilities = await model.predict(images, labels.length);
    const batch = scoreBatch(probabilities, labels, classes);
    tallyAnswers(confusion, labels, batch.predicted);
    lossSum += batch.lossSum;
    count += labels.length;
    onBatch(count);
  }
  return { confusion, loss: count ? lossSum / count : 0 };
}
