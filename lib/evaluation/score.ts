import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import type { SplitTensors } from '../datasets/shards';
import type { TensorFlow } from '../tf';
import { emptyConfusion, tallyAnswers, type ConfusionMatrix } from './classification';

export interface SplitScore {
  confusion: ConfusionMatrix;
  /** Mean categorical cross-entropy over the split. */
  loss: number;
}

/** Images per `predict` call: small enough that progress is reported often, large enough to keep the cores busy. */
const PREDICT_BATCH = 256;

/** Predicts every image of a split, a batch at a time, calling `onBatch` with the images done after each. */
export async function scoreSplit(
  tf: TensorFlow,
  model: LayersModel,
  data: SplitTensors,
  classes: number,
  onBatch: (imagesDone: number) => void,
): Promise<SplitScore> {
  const confusion = emptyConfusion(classes);
  let lossSum = 0;
  for (let start = 0; start < data.count; start += PREDICT_BATCH) {
    const size = Math.min(PREDICT_BATCH, data.count - start);
    const [predicted, actual, batchLoss] = tf.tidy(() => {
      const labels = data.labels.slice(start, size);
      const probabilities = model.predict(data.images.slice(start, size)) as Tensor;
      return [probabilities.argMax(-1), labels.argMax(-1), tf.metrics.categoricalCrossentropy(labels, probabilities).sum()];
    });
    try {
      tallyAnswers(confusion, await actual!.data(), await predicted!.data());
      lossSum += (await batchLoss!.data())[0]!;
    } finally {
      tf.dispose([predicted!, actual!, batchLoss!]);
    }
    onBatch(start + size);
  }
  return { confusion, loss: data.count ? lossSum / data.count : 0 };
}
