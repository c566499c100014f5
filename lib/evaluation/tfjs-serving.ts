import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { modelFromFiles } from '../model-io';
import type { TensorFlow } from '../tf';
import type { ServingModel } from './serving-model';

/** Weights of `model` that are not 0. */
function nonZeroWeights(tf: TensorFlow, model: LayersModel): number {
  return model.getWeights().reduce((n, weights) => n + tf.tidy(() => tf.notEqual(weights, 0).sum().dataSync()[0]!), 0);
}

/** A TensorFlow.js layers model (the files of `modelFiles`) served by tfjs on its loaded backend. */
export async function tfjsServingModel(
  tf: TensorFlow,
  files: Record<string, Uint8Array>,
  imageShape: readonly number[],
  runtime: string,
): Promise<ServingModel> {
  const model = await modelFromFiles(tf, files);
  return {
    runtime,
    parameterCount: model.countParams(),
    nonZeroParameters: nonZeroWeights(tf, model),
    async predict(images, count) {
      // One batch: by default `predict` splits the images into batches of 32, each paying every op's overhead again.
      const probabilities = tf.tidy(() => model.predict(tf.tensor(images, [count, ...imageShape]), { batchSize: count }) as Tensor);
      try {
        return (await probabilities.data()) as Float32Array;
      } finally {
        probabilities.dispose();
      }
    },
    dispose() {
      model.dispose();
    },
  };
}
