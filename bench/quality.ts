/**
 * `npm run bench:quality`: trains the reference MLP and CNN on the full, real Fashion-MNIST (Debian's
 * dataset-fashion-mnist) on native TensorFlow and prints test accuracy, wall time and samples/s beside published
 * baselines. `QUALITY_MODELS=mlp` runs one model.
 */
import { artifactStore } from '../lib/artifacts';
import { resolve } from 'node:path';
import { evaluateJob } from '../lib/evaluation/evaluate-job';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { trainJob } from '../lib/training/train-job';
import { fashionMnistManifest } from './fashion-mnist';

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
    const trained = await trainJob({ artifacts: await artifactStore().describeForChild(), manifestUri, model, training }, (p) => {
      if (p.finishedEpoch) {
        const e = p.finishedEpoch;
        console.log(`  ${name} epoch ${e.epoch}: loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(4)} val_acc ${e.validationAccuracy?.toFixed(4)} lr ${e.learningRate.toExponential(2)} ${e.seconds.toFixed(1)}s`);
      }
    });
    const wall = (performance.now() - started) / 1000;
    const evaluation = await evaluateJob({ artifacts: await artifactStore().describeForChild(), modelUri: trained.modelUri, manifestUri, split: 'test' }, () => undefined);
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
