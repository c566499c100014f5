import type { LayersModel } from '@tensorflow/tfjs';
import type { ModelSpec } from './schemas/model';
import type { TensorFlow } from './tf';

export interface InputShape {
  height: number;
  width: number;
  channels: number;
}

/** The model zoo: one place that turns a declared architecture into a tfjs model. */
export function buildModel(tf: TensorFlow, spec: ModelSpec, input: InputShape, numClasses: number, seed: number): LayersModel {
  let layerSeed = seed;
  const init = () => tf.initializers.glorotUniform({ seed: layerSeed++ });
  const model = tf.sequential();
  const inputShape = [input.height, input.width, input.channels];
  if (spec.architecture === 'cnn') {
    spec.filters.forEach((filters, i) => {
      model.add(
        tf.layers.conv2d({
          ...(i === 0 ? { inputShape } : {}),
          filters,
          kernelSize: spec.kernelSize,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: init(),
        }),
      );
      model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    });
    model.add(tf.layers.flatten());
  } else {
    model.add(tf.layers.flatten({ inputShape }));
  }
  for (const units of spec.hiddenUnits) {
    model.add(tf.layers.dense({ units, activation: 'relu', kernelInitializer: init() }));
    if (spec.dropout > 0) model.add(tf.layers.dropout({ rate: spec.dropout, seed: layerSeed++ }));
  }
  model.add(tf.layers.dense({ units: numClasses, activation: 'softmax', kernelInitializer: init() }));
  return model;
}
