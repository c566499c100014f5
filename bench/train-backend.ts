/**
 * Measures one TensorFlow.js backend (chosen by TFJS_BACKEND) on one reference model: training throughput and
 * batch-1 / batch-256 inference latency. Prints one JSON line. Run by bench/train.ts.
 */
import type { Tensor } from '@tensorflow/tfjs';
import { buildModel } from '../lib/models';
import { seededRandom } from '../lib/random';
import { tensorflow } from '../lib/tf';
import { FASHION_MNIST_SHAPE, NUM_CLASSES, REFERENCE_MODELS } from './reference-models';
import { median } from '../lib/median';

async function main(): Promise<void> {
  const [architecture, samplesArg, batchArg] = process.argv.slice(2) as ['mlp' | 'cnn', string, string];
  const samples = Number(samplesArg);
  const batchSize = Number(batchArg);
  const { tf, backend } = tensorflow();
  const { height, width, channels } = FASHION_MNIST_SHAPE;
  const random = seededRandom(1);
  const pixels = Float32Array.from({ length: samples * height * width * channels }, () => random());
  const labels = Int32Array.from({ length: samples }, () => Math.floor(random() * NUM_CLASSES));
  const xs = tf.tensor4d(pixels, [samples, height, width, channels]);
  const ys = tf.oneHot(tf.tensor1d(labels, 'int32'), NUM_CLASSES);
  const model = buildModel(tf, REFERENCE_MODELS[architecture], FASHION_MNIST_SHAPE, NUM_CLASSES, 1);
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });

  // Warm-up: kernels, memory pools and the first-call overhead are not throughput. The JS backend is slow enough
  // that one batch (and one repeat of each latency figure) is all it gets.
  const slow = backend === 'cpu';
  const warmup = Math.min(samples, batchSize * (slow ? 1 : 4));
  await model.fit(xs.slice(0, warmup), ys.slice(0, warmup), { batchSize, epochs: 1, verbose: 0 });
  // The median of several timed epochs: this figure is noisy on a shared machine.
  const epochSeconds: number[] = [];
  for (let epoch = 0; epoch < (slow ? 1 : 3); epoch++) {
    const started = performance.now();
    await model.fit(xs, ys, { batchSize, epochs: 1, verbose: 0, shuffle: true });
    epochSeconds.push((performance.now() - started) / 1000);
  }

  const latency = (batch: number, repeats: number, warmups: number) => {
    const input = xs.slice(0, batch);
    for (let i = 0; i < warmups; i++) (model.predict(input, { batchSize: batch }) as Tensor).dataSync();
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const t = performance.now();
      const out = model.predict(input, { batchSize: batch }) as Tensor;
      out.dataSync();
      out.dispose();
      times.push(performance.now() - t);
    }
    input.dispose();
    return median(times);
  };
  console.log(JSON.stringify({
    runtime: backend === 'tensorflow' ? 'tfjs-node' : 'tfjs-cpu',
    architecture,
    samples,
    batchSize,
    trainSamplesPerSecond: samples / median(epochSeconds),
    latencyBatch1Ms: latency(1, slow ? 10 : 200, 3),
    latencyBatch256Ms: latency(256, slow ? 1 : 20, slow ? 0 : 3),
  }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
