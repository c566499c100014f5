/**
 * `npm run bench:quality`: trains the reference MLP and CNN on the full, real Fashion-MNIST (Debian's
 * dataset-fashion-mnist) on native TensorFlow and prints test accuracy, wall time and samples/s beside published
 * baselines. `QUALITY_MODELS=mlp` runs one model.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { artifactStore } from '../lib/artifacts';
import { settings } from '../lib/config';
import { readIdx } from '../lib/datasets/idx';
import type { DatasetManifest, ShardRef } from '../lib/datasets/manifest';
import { evaluateJob } from '../lib/evaluation/evaluate-job';
import { encodeNpy } from '../lib/npy';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';
import { splitOf, type Split } from '../lib/split';
import { tensorflow } from '../lib/tf';
import { trainJob } from '../lib/training/train-job';

const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const SHARD = 10_000;
const PIXELS = 28 * 28;

/** Test accuracies from the benchmark table of the Fashion-MNIST repository (zalandoresearch/fashion-mnist). */
const PUBLISHED = [
  ['Human performance', 0.835],
  ['MLP 256-128-100', 0.8833],
  ['AlexNet with triplet loss', 0.899],
  ['HOG+SVM', 0.926],
  ['VGG16 (26M parameters)', 0.935],
] as const;

const MODELS = {
  mlp: {
    target: 0.89,
    model: modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [256, 128], dropout: 0.2 }),
    training: trainingSpecSchema.parse({ epochs: 20, batchSize: 128, learningRateSchedule: { type: 'cosine' }, earlyStopping: { monitor: 'validationAccuracy', patience: 5 } }),
  },
  cnn: {
    target: 0.92,
    model: modelSpecSchema.parse({ architecture: 'cnn', filters: [32, 64], kernelSize: 3, hiddenUnits: [128], dropout: 0.4, batchNorm: true }),
    training: trainingSpecSchema.parse({
      epochs: 15,
      batchSize: 256,
      learningRate: 0.002,
      learningRateSchedule: { type: 'cosine' },
      // The CNN's validation loss turns up while its accuracy still climbs: stop on accuracy.
      earlyStopping: { monitor: 'validationAccuracy', patience: 5 },
    }),
  },
};

/** Writes Fashion-MNIST as shards and a manifest: the official 10,000 test images, 10% of the training images held out by content hash. */
async function fashionMnistManifest(dir: string): Promise<string> {
  const store = artifactStore();
  const read = (name: string) => readIdx(readFileSync(join(dir, name)));
  const splits: Record<Split, { pixels: number[]; labels: number[] }> = { train: { pixels: [], labels: [] }, validation: { pixels: [], labels: [] }, test: { pixels: [], labels: [] } };
  const assign = (images: ReturnType<typeof read>, labels: ReturnType<typeof read>, split: (image: Uint8Array) => Split) => {
    for (let i = 0; i < labels.data.length; i++) {
      const image = images.data.subarray(i * PIXELS, (i + 1) * PIXELS);
      const target = splits[split(image)];
      for (const v of image) target.pixels.push(v);
      target.labels.push(labels.data[i]!);
    }
  };
  assign(read('train-images-idx3-ubyte.gz'), read('train-labels-idx1-ubyte.gz'), (image) => splitOf(createHash('sha256').update(image).digest('hex'), 0.1, 0));
  assign(read('t10k-images-idx3-ubyte.gz'), read('t10k-labels-idx1-ubyte.gz'), () => 'test');

  const shards: ShardRef[] = [];
  const counts = { train: 0, validation: 0, test: 0 };
  const countsPerClass = { train: new Array(10).fill(0), validation: new Array(10).fill(0), test: new Array(10).fill(0) };
  for (const split of ['train', 'validation', 'test'] as const) {
    const { pixels, labels } = splits[split];
    counts[split] = labels.length;
    labels.forEach((l) => countsPerClass[split][l]++);
    for (let start = 0; start < labels.length; start += SHARD) {
      const count = Math.min(SHARD, labels.length - start);
      const images = Float32Array.from(pixels.slice(start * PIXELS, (start + count) * PIXELS), (v) => v / 255);
      const imagesUri = (await store.putBlob(encodeNpy({ dtype: 'float32', shape: [count, 28, 28, 1], data: images }), '.npy')).uri;
      const labelsUri = (await store.putBlob(encodeNpy({ dtype: 'int32', shape: [count], data: Int32Array.from(labels.slice(start, start + count)) }), '.npy')).uri;
      shards.push({ split, imagesUri, labelsUri, count });
    }
  }
  const manifest: DatasetManifest = {
    version: 2,
    source: `idx:${dir}`,
    classes: CLASSES,
    shape: [28, 28, 1],
    dtype: 'float32',
    spec: preprocessSpecSchema.parse({ validationFraction: 0.1, testFraction: 10_000 / 70_000 }),
    counts,
    countsPerClass,
    images: { listed: 70_000, kept: 70_000, leftOut: 0, augmentedCopies: 0 },
    shards,
    imagesIndexUri: (await store.putBlob(Buffer.from('[]'), '.json')).uri,
    leftOut: [],
    leftOutByReason: {},
    fingerprint: createHash('sha256').update(shards.map((s) => s.imagesUri).join()).digest('hex'),
  };
  return (await store.putBlob(Buffer.from(JSON.stringify(manifest, null, 2)), '.json')).uri;
}

async function main(): Promise<void> {
  const dir = resolve(process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist');
  const { backend } = tensorflow();
  if (backend !== 'tensorflow') throw new Error('bench:quality measures native TensorFlow; run `npm run provision` first.');
  const manifestUri = await fashionMnistManifest(dir);
  console.log(`Fashion-MNIST from ${dir}: manifest ${manifestUri}`);
  const names = (process.env.QUALITY_MODELS ?? 'mlp,cnn').split(',') as (keyof typeof MODELS)[];
  const rows: string[] = [];
  for (const name of names) {
    const { model, training, target } = MODELS[name];
    const started = performance.now();
    const trained = await trainJob({ artifactRoot: settings().artifactRoot, manifestUri, model, training }, (p) => {
      if (p.finishedEpoch) {
        const e = p.finishedEpoch;
        console.log(`  ${name} epoch ${e.epoch}: loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(4)} val_acc ${e.validationAccuracy?.toFixed(4)} lr ${e.learningRate.toExponential(2)} ${e.seconds.toFixed(1)}s`);
      }
    });
    const wall = (performance.now() - started) / 1000;
    const evaluation = await evaluateJob({ artifactRoot: settings().artifactRoot, modelUri: trained.modelUri, manifestUri, split: 'test' }, () => undefined);
    rows.push(
      `${name.padEnd(4)} ${(evaluation.accuracy * 100).toFixed(2).padStart(6)}%  target ${(target * 100).toFixed(0)}% ${evaluation.accuracy >= target ? 'met   ' : 'MISSED'}  ` +
        `${trained.history.length} epochs  ${wall.toFixed(0)} s wall  ${trained.samplesPerSecond.toFixed(0)} samples/s  ${evaluation.parameterCount} parameters  ${trained.modelUri}`,
    );
    console.log(rows.at(-1));
  }
  console.log('\nmodel  test acc  target        epochs     wall        throughput');
  console.log(rows.join('\n'));
  console.log('\nPublished Fashion-MNIST test accuracies (zalandoresearch/fashion-mnist benchmark table):');
  for (const [what, accuracy] of PUBLISHED) console.log(`  ${what.padEnd(28)} ${(accuracy * 100).toFixed(2)}%`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
