import type { LayersModel, layers as Layers } from '@tensorflow/tfjs';
import type { ModelSpec } from './schemas/model';
import type { TensorFlow } from './tf';

export interface InputShape {
  height: number;
  width: number;
  channels: number;
}

/** The model zoo: the one place that turns a declared architecture into a tfjs model. */
export function buildModel(tf: TensorFlow, spec: ModelSpec, input: InputShape, numClasses: number, seed: number): LayersModel {
  let layerSeed = seed;
  const init = () => tf.initializers.glorotUniform({ seed: layerSeed++ });
  const model = tf.sequential();
  const inputShape = [input.height, input.width, input.channels];
  const addActivated = (layer: Layers.Layer) => {
    model.add(layer);
    if (spec.batchNorm) model.add(tf.layers.batchNormalization());
    model.add(tf.layers.activation({ activation: 'relu' }));
  };
  if (spec.architecture === 'cnn') {
    spec.filters.forEach((filters, block) => {
      const kernelSize = Array.isArray(spec.kernelSize) ? (spec.kernelSize[block] ?? spec.kernelSize.at(-1)!) : spec.kernelSize;
      for (let conv = 0; conv < spec.convsPerBlock; conv++) {
        const first = block === 0 && conv === 0;
        addActivated(
          tf.layers.conv2d({
            ...(first ? { inputShape } : {}),
            filters,
            kernelSize,
            padding: 'same',
            useBias: !spec.batchNorm,
            kernelInitializer: init(),
          }),
        );
      }
      model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    });
    model.add(tf.layers.flatten());
  } else {
    model.add(tf.layers.flatten({ inputShape }));
  }
  for (const units of spec.hiddenUnits) {
    addActivated(tf.layers.dense({ units, useBias: !spec.batchNorm, kernelInitializer: init() }));
    // Unseeded on purpose: a seeded tfjs dropout layer draws the same mask at every step.
    if (spec.dropout > 0) model.add(tf.layers.dropout({ rate: spec.dropout }));
  }
  model.add(tf.layers.dense({ units: numClasses, activation: 'softmax', kernelInitializer: init() }));
  return model;
}
