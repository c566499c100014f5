import type { LayersModel } from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import { MagnitudePruning, magnitudeMask, prunableKernels, type LayerSparsity } from '../lib/compression/magnitude-pruning';
import { decodeSparseModel } from '../lib/compression/sparse-encoding';
import { keptWeights, sparsityAt, type PolynomialDecay } from '../lib/compression/sparsity-schedule';
import { saveModel } from '../lib/model-io';
import { buildModel } from '../lib/models';
import { seededRandom } from '../lib/random';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { initialTrainingState } from '../lib/training/checkpoint';
import { trainJob, TrainingStoppedError, type TrainJobInput, type TrainProgress } from '../lib/training/train-job';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { modelJsonUrl } from './helpers/local-store';

const { tf } = tensorflow();

/** A CNN with batch normalization, so that pruning has convolution, dense and batch-norm weights to tell apart. */
const spec = modelSpecSchema.parse({ architecture: 'cnn', filters: [4, 8], hiddenUnits: [16], batchNorm: true, dropout: 0 });
const input = { height: 8, width: 8, channels: 1 };

function zerosOf(model: LayersModel): Map<string, { size: number; zeros: number[] }> {
  return new Map(
    model.weights.map((w) => {
      const values = w.read().dataSync();
      return [w.originalName, { size: values.length, zeros: [...values.keys()].filter((i) => values[i] === 0) }];
    }),
  );
}

describe('magnitude masks', () => {
  it('keep the largest magnitudes, exactly as many as the sparsity leaves, ties to the lower index', () => {
    assert.deepEqual([...magnitudeMask(Float32Array.of(0.5, -0.1, 0.3, -0.9, 0.2), 0.6)], [1, 0, 0, 1, 0]);
    assert.deepEqual([...magnitudeMask(Float32Array.of(1, -1, 1, -1), 0.5)], [1, 1, 0, 0]);
    assert.deepEqual([...magnitudeMask(Float32Array.of(3, 2, 1), 0)], [1, 1, 1]);
  });

  it('are the kernels of convolutions and dense layers only, not biases or batch normalization', () => {
    const model = buildModel(tf, { ...spec, batchNorm: false }, input, 4, 1);
    const kernels = prunableKernels(model);
    assert.deepEqual(
      kernels.map((k) => k.kernel.originalName.split('/')[1]),
      ['kernel', 'kernel', 'kernel', 'kernel'],
    );
    assert.deepEqual(
      kernels.map((k) => k.layer),
      model.layers.filter((l) => ['Conv2D', 'Dense'].includes(l.getClassName())).map((l) => l.name),
    );
  });
});

describe('gradual magnitude pruning during training', () => {
  it('reaches each step’s scheduled sparsity per layer, and pruned weights stay exactly zero after Adam steps', async () => {
    const model = buildModel(tf, spec, input, 4, 1);
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const schedule: PolynomialDecay = { initialSparsity: 0.3, finalSparsity: 0.8, beginStep: 0, endStep: 4, frequency: 2, power: 1 };
    const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'magnitude-pruning-')));
    const pruning = new MagnitudePruning(tf, store, schedule, 100);
    const random = seededRandom(7);
    const xs = tf.tensor4d(Float32Array.from({ length: 16 * 64 }, random), [16, 8, 8, 1]);
    const ys = tf.oneHot(tf.tensor1d([...Array(16).keys()].map((i) => i % 4), 'int32'), 4);
    const kernelNames = prunableKernels(model).map((k) => k.kernel.originalName);
    const expectedZeros = (sparsity: number) => (name: string) => {
      const { size } = zerosOf(model).get(name)!;
      return size - keptWeights(size, sparsity);
    };

    pruning.start(model, initialTrainingState());
    // Masks for step 0 go on before it: the schedule's initial sparsity.
    assert.deepEqual(kernelNames.map((n) => zerosOf(model).get(n)!.zeros.length), kernelNames.map(expectedZeros(0.3)));
    let pruned = zerosOf(model);
    for (let step = 1; step <= 8; step++) {
      await model.trainOnBatch(xs, ys);
      if (step === 1) {
        const trained = zerosOf(model);
        const regrown = kernelNames.filter((n) => trained.get(n)!.zeros.length < pruned.get(n)!.zeros.length);
        assert.deepEqual(regrown, kernelNames, 'without the masks, an Adam step moves pruned weights off zero');
      }
      pruning.afterStep(model, step);
      const now = zerosOf(model);
      // Masks last updated at the latest even step up to `step`, at that step's sparsity.
      const sparsity = sparsityAt(schedule, Math.min(4, step - (step % 2)));
      assert.deepEqual(kernelNames.map((n) => now.get(n)!.zeros.length), kernelNames.map(expectedZeros(sparsity)), `after step ${step}`);
      for (const name of kernelNames) {
        const stillZero = new Set(now.get(name)!.zeros);
        assert.ok(pruned.get(name)!.zeros.every((i) => stillZero.has(i)), `${name}: a pruned weight came back at step ${step}`);
      }
      pruned = now;
    }
    close(sparsityAt(schedule, 4), 0.8);
    // Biases and batch normalization are trained, never pruned: after eight Adam steps none of them is zero.
    const others = [...pruned].filter(([name]) => !kernelNames.includes(name) && !/moving/.test(name));
    assert.ok(others.length >= 6);
    for (const [name, { zeros }] of others) assert.deepEqual(zeros, [], name);
  });

  it('resumed from a checkpoint, ends with exactly the sparsity and zeros of an uninterrupted run', async () => {
    const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'magnitude-pruning-resume-')));
    const initialModelUri = (await saveModel(tf, store, buildModel(tf, spec, input, 4, 3))).uri;
    // 16 batches an epoch, 3 epochs; the final sparsity is reached at step 12, in the first epoch.
    const schedule: PolynomialDecay = { initialSparsity: 0, finalSparsity: 0.8, beginStep: 0, endStep: 12, frequency: 4, power: 3 };
    const job: TrainJobInput = {
      artifacts: { kind: 'local', root: store.root },
      manifestUri: await writeSyntheticDataset(store, 256),
      model: spec,
      training: trainingSpecSchema.parse({ epochs: 3, batchSize: 16, learningRate: 0.01, earlyStopping: null }),
      initialModelUri,
      extension: { kind: 'prune', schedule },
    };
    const uninterrupted = await trainJob(job, () => undefined);

    let last: TrainProgress | undefined;
    await assert.rejects(
      trainJob({ ...job, progressIntervalMs: 0 }, (p) => {
        last = p;
        if (p.epoch === 2 && p.batch === 5) process.emit('SIGTERM');
      }),
      TrainingStoppedError,
    );
    // Long after the last mask update: only masks recovered from the checkpoint keep Adam from regrowing weights.
    const resumed = await trainJob({ ...job, resumeFrom: last!.checkpoint!.uri }, () => undefined);
    assert.equal(resumed.resumes.length, 1);

    const layersOf = (result: typeof resumed) => (result.extension as { layers: LayerSparsity[] }).layers;
    assert.deepEqual(layersOf(resumed), layersOf(uninterrupted));
    for (const layer of layersOf(resumed)) assert.equal(layer.zeros, layer.weights - keptWeights(layer.weights, 0.8), layer.layer);
    assert.equal(layersOf(resumed).length, 4);

    // The stored model, loaded by stock TensorFlow.js, has exactly those zeros in the same places.
    const [fromResumed, fromUninterrupted] = [await tf.loadLayersModel(modelJsonUrl(resumed.modelUri, store)), await tf.loadLayersModel(modelJsonUrl(uninterrupted.modelUri, store))];
    const kernels = (model: LayersModel) => prunableKernels(model).map(({ kernel }) => [...kernel.read().dataSync()].map((v) => v === 0));
    assert.deepEqual(kernels(fromResumed), kernels(fromUninterrupted));
    assert.deepEqual(
      kernels(fromResumed).map((zeros) => zeros.filter(Boolean).length),
      layersOf(resumed).map((l) => l.zeros),
    );

    // Its sparse alternate decodes to the dense files byte for byte.
    const sparse = (resumed.extension as { sparse: { uri: string } }).sparse;
    const dense = await store.readDirectory(resumed.modelUri);
    const decoded = decodeSparseModel(await store.readDirectory(sparse.uri));
    assert.deepEqual(Object.keys(decoded).sort(), Object.keys(dense).sort());
    for (const name of Object.keys(dense)) assert.ok(Buffer.from(decoded[name]!).equals(dense[name]!), name);
  });
});

function close(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} vs ${expected}`);
}
