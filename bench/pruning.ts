/**
 * `npm run bench:prune`: what pruning buys on the reference CNN (28x28x1 inputs, 10 classes), in one run.
 * - Structured pruning at fraction 0.5: inference latency in tfjs-node of the rebuilt model against the original,
 *   batch 1 and batch 256, timed in alternating rounds (BENCH_ROUNDS, default 5) and compared by their medians.
 *   Target: batch 256 at least 1.5x faster.
 * - Unstructured pruning at 80% sparsity: bytes and gzip bytes of the dense model and of its sparse encoding.
 *   Target: the sparse encoding, gzipped, at least 3x smaller than the dense float32 weights file.
 * Weights are the seeded initial ones: latency and sizes do not depend on training (accuracy is for bench:compress).
 */
import { magnitudeMask, prunableKernels } from '../lib/compression/magnitude-pruning';
import { encodeSparseModel, filesSize } from '../lib/compression/sparse-encoding';
import { planStructuredPruning, rebuildWithUnits } from '../lib/compression/structured-pruning';
import { measureLatency } from '../lib/evaluation/latency';
import { tfjsServingModel } from '../lib/evaluation/tfjs-serving';
import { modelFiles } from '../lib/model-io';
import { buildModel } from '../lib/models';
import { tensorflow } from '../lib/tf';
import { FASHION_MNIST_SHAPE, NUM_CLASSES, REFERENCE_MODELS } from './reference-models';
import { median } from '../lib/median';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

async function main(): Promise<void> {
  const { tf, backend } = tensorflow();
  const build = () => buildModel(tf, REFERENCE_MODELS.cnn, FASHION_MNIST_SHAPE, NUM_CLASSES, 42);

  const original = build();
  const smaller = await rebuildWithUnits(tf, original, planStructuredPruning(tf, original, 0.5));
  const shape = [FASHION_MNIST_SHAPE.height, FASHION_MNIST_SHAPE.width, FASHION_MNIST_SHAPE.channels];
  const images = tf.randomUniform([256, ...shape], 0, 1, 'float32', 1).dataSync() as Float32Array;
  const [servedOriginal, servedSmaller] = await Promise.all([original, smaller].map(async (model) => tfjsServingModel(tf, await modelFiles(tf, model), shape, backend)));
  const timings = { original: [] as { single: number; batch: number }[], smaller: [] as { single: number; batch: number }[] };
  for (let round = 0; round < ROUNDS; round++) {
    timings.original.push(await measureLatency(servedOriginal!, images, 256, () => undefined));
    timings.smaller.push(await measureLatency(servedSmaller!, images, 256, () => undefined));
  }
  const latency = (runs: { single: number; batch: number }[]) => ({ single: median(runs.map((r) => r.single)), batch: median(runs.map((r) => r.batch)) });
  const [before, after] = [latency(timings.original), latency(timings.smaller)];
  const speedup = before.batch / after.batch;
  console.log(`structured pruning, fraction 0.5, tfjs-node (${backend}), median of ${ROUNDS} rounds`);
  console.log('| model | parameters | batch-1 ms | batch-256 ms |');
  console.log('|---|---:|---:|---:|');
  console.log(`| reference CNN | ${original.countParams()} | ${before.single.toFixed(2)} | ${before.batch.toFixed(1)} |`);
  console.log(`| pruned 50% of filters and units | ${smaller.countParams()} | ${after.single.toFixed(2)} | ${after.batch.toFixed(1)} |`);
  console.log(`batch-256 speed-up ${speedup.toFixed(2)}x (target >= 1.5x: ${speedup >= 1.5 ? 'met' : 'MISSED'}); batch-1 ${(before.single / after.single).toFixed(2)}x\n`);

  const pruned = build();
  for (const { kernel } of prunableKernels(pruned)) {
    const values = kernel.read();
    const mask = tf.tensor(magnitudeMask(values.dataSync() as Float32Array, 0.8), values.shape, 'bool');
    kernel.write(tf.tidy(() => tf.where(mask, values, tf.zerosLike(values))));
    mask.dispose();
  }
  const dense = await modelFiles(tf, pruned);
  const sparse = encodeSparseModel(dense);
  const weightsBytes = dense['weights.bin']!.byteLength;
  const [denseSize, sparseSize] = [filesSize(dense), filesSize(sparse)];
  const ratio = weightsBytes / sparseSize.gzipBytes;
  console.log('unstructured pruning, 80% of every kernel');
  console.log('| stored form | bytes | gzip bytes |');
  console.log('|---|---:|---:|');
  console.log(`| dense layers model (model.json + float32 weights) | ${denseSize.bytes} | ${denseSize.gzipBytes} |`);
  console.log(`| sparse encoding | ${sparseSize.bytes} | ${sparseSize.gzipBytes} |`);
  console.log(`float32 weights file ${weightsBytes} B / sparse gzip ${sparseSize.gzipBytes} B = ${ratio.toFixed(2)}x (target >= 3x: ${ratio >= 3 ? 'met' : 'MISSED'})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
