import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { loadSplitArrays } from '../lib/datasets/shards';
import { evaluateJob, type EvaluateJobInput, type EvaluationReport, type EvaluationSummary } from '../lib/evaluation/evaluate-job';
import { measureLatency } from '../lib/evaluation/latency';
import type { ServingModel } from '../lib/evaluation/serving-model';
import { loadServingModel, readStoredModel, type StoredModel } from '../lib/evaluation/stored-model';
import { modelFromFiles, saveModel } from '../lib/model-io';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { trainJob } from '../lib/training/train-job';
import { storeOnnxOf } from './helpers/onnx-export';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';

describe('serving models: the same evaluation in tfjs-node and onnxruntime-node (real runtimes)', () => {
  const { tf } = tensorflow();
  const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'serving-model-')));
  const imageShape = [8, 8, 1];
  let manifestUri: string;
  /** Trained models, each as TensorFlow.js layers and exported to ONNX. */
  const trained: Record<'mlp' | 'cnn', { tfjs: StoredModel; onnx: StoredModel }> = {} as never;

  const evaluate = (model: StoredModel): Promise<EvaluationSummary> =>
    evaluateJob({ artifacts: { kind: 'local', root: store.root }, modelUri: model.uri, format: model.format, manifestUri, split: 'test' } satisfies EvaluateJobInput, () => undefined);

  /** The trained MLP with `share` of each weight matrix set to 0, stored in both formats, and how many weights are 0. */
  async function sparsified(share: number): Promise<{ tfjs: StoredModel; onnx: StoredModel; zeros: number; total: number }> {
    const model = await modelFromFiles(tf, await store.readDirectory(trained.mlp.tfjs.uri));
    const every = Math.round(1 / (1 - share));
    let zeros = 0;
    let total = 0;
    model.setWeights(
      model.getWeights().map((weights) => {
        const values = (weights.dataSync() as Float32Array).map((w, i) => (weights.rank === 2 && i % every !== 0 ? 0 : w));
        // Biases of units that never fired stay 0 after training.
        zeros += values.filter((w) => w === 0).length;
        total += values.length;
        return tf.tensor(values, weights.shape);
      }),
    );
    const tfjs = { format: 'tfjs-layers' as const, uri: (await saveModel(tf, store, model)).uri };
    model.dispose();
    return { tfjs, onnx: await storeOnnxOf(store, tfjs, manifestUri), zeros, total };
  }

  before(async () => {
    manifestUri = await writeSyntheticDataset(store, 256, { testCount: 700 });
    const training = trainingSpecSchema.parse({ epochs: 2, batchSize: 32, learningRate: 0.01, earlyStopping: null });
    const specs = { mlp: { architecture: 'mlp', hiddenUnits: [64], dropout: 0 }, cnn: { architecture: 'cnn', filters: [4, 8], hiddenUnits: [16], dropout: 0 } };
    for (const [name, spec] of Object.entries(specs) as ['mlp' | 'cnn', object][]) {
      const { modelUri } = await trainJob({ artifacts: { kind: 'local', root: store.root }, manifestUri, model: modelSpecSchema.parse(spec), training }, () => undefined);
      const tfjs = { format: 'tfjs-layers' as const, uri: modelUri };
      trained[name] = { tfjs, onnx: await storeOnnxOf(store, tfjs, manifestUri) };
    }
  });

  it('scores a real .onnx file in onnxruntime-node with the accuracy and loss tfjs-node gives the same weights', async () => {
    const data = await loadSplitArrays(store, await store.readJson<DatasetManifest>(manifestUri), 'test');
    for (const [name, { tfjs, onnx }] of Object.entries(trained)) {
      const [inTfjs, inOnnx] = [await evaluate(tfjs), await evaluate(onnx)];
      assert.equal(inTfjs.runtime, tensorflow().backend === 'tensorflow' ? 'tfjs-node' : 'tfjs-cpu');
      assert.equal(inOnnx.runtime, 'onnxruntime-node');
      assert.equal(inOnnx.count, 700);
      assert.ok(inTfjs.accuracy > 0.5, `${name} learned something (accuracy ${inTfjs.accuracy})`);
      assert.equal(inOnnx.accuracy, inTfjs.accuracy, name);
      assert.ok(Math.abs(inOnnx.loss - inTfjs.loss) < 1e-5, `${name}: loss ${inOnnx.loss} in onnxruntime, ${inTfjs.loss} in tfjs`);
      assert.equal(inOnnx.parameterCount, inTfjs.parameterCount, name);
      const report = await store.readJson<EvaluationReport>(inOnnx.reportUri);
      assert.deepEqual([report.format, report.modelUri, report.runtime], ['onnx', onnx.uri, 'onnxruntime-node']);

      // Every probability, not only the argmax, agrees.
      const served = await Promise.all([tfjs, onnx].map(async (m) => loadServingModel(m.format, await readStoredModel(store, m), imageShape)));
      const [fromTfjs, fromOnnx] = await Promise.all(served.map((m) => m.predict(data.images, data.count)));
      await Promise.all(served.map((m) => m.dispose()));
      assert.equal(fromOnnx!.length, 700 * 4);
      assert.ok(fromOnnx!.every((p, i) => Math.abs(p - fromTfjs![i]!) < 1e-5), `${name}: probabilities differ by more than 1e-5`);
    }
  });

  it('counts non-zero parameters, the same in both runtimes', async () => {
    const { tfjs, onnx, zeros, total } = await sparsified(0.75);
    const [inTfjs, inOnnx] = [await evaluate(tfjs), await evaluate(onnx)];
    assert.ok(zeros > total / 2);
    assert.deepEqual([inTfjs.parameterCount, inTfjs.nonZeroParameters], [total, total - zeros]);
    assert.deepEqual([inOnnx.parameterCount, inOnnx.nonZeroParameters], [total, total - zeros]);
  });

  it('counts an int8 model as many parameters as its float model (scales and zero points are not parameters), zeros kept 0', async () => {
    for (const [name, { tfjs }] of Object.entries(trained)) {
      const [float, int8] = [await evaluate(tfjs), await evaluate(await storeOnnxOf(store, tfjs, manifestUri, { int8: true }))];
      assert.equal(int8.runtime, 'onnxruntime-node');
      assert.equal(int8.parameterCount, float.parameterCount, name);
      assert.ok(Math.abs(int8.accuracy - float.accuracy) <= 0.02, `${name}: int8 ${int8.accuracy}, float ${float.accuracy}`);
    }
    const sparse = await sparsified(0.5);
    const int8 = await evaluate(await storeOnnxOf(store, sparse.tfjs, manifestUri, { int8: true }));
    // Symmetric int8 keeps a 0 as 0 and rounds only the smallest weights to it.
    const nonZero = sparse.total - sparse.zeros;
    assert.ok(int8.nonZeroParameters <= nonZero && int8.nonZeroParameters > 0.95 * nonZero, `${int8.nonZeroParameters} non-zero, float has ${nonZero}`);
  });

  it('gzips the stored files together: a mostly zero model shrinks, a dense one hardly does', async () => {
    const sparse = await sparsified(0.9);
    for (const [dense, zeroed] of [[trained.mlp.tfjs, sparse.tfjs], [trained.mlp.onnx, sparse.onnx]] as const) {
      const [d, z] = [await evaluate(dense), await evaluate(zeroed)];
      assert.equal(z.modelBytes, d.modelBytes, `${dense.format}: zeros take as many bytes on disk`);
      assert.ok(d.gzipBytes > 0.8 * d.modelBytes, `${dense.format}: trained float weights gzip to ${d.gzipBytes} of ${d.modelBytes} bytes`);
      assert.ok(z.gzipBytes < 0.35 * z.modelBytes, `${dense.format}: 90% zeros gzip to ${z.gzipBytes} of ${z.modelBytes} bytes`);
    }
    const files = await readStoredModel(store, trained.mlp.tfjs);
    assert.deepEqual(Object.keys(files).sort(), ['model.json', 'weights.bin']);
    assert.equal((await evaluate(trained.mlp.tfjs)).modelBytes, files['model.json']!.length + files['weights.bin']!.length);
  });

  it('times one image and a batch of up to 256, each after a warm-up call, in either runtime', async () => {
    const data = await loadSplitArrays(store, await store.readJson<DatasetManifest>(manifestUri), 'test');
    for (const stored of [trained.cnn.tfjs, trained.cnn.onnx]) {
      const served = await loadServingModel(stored.format, await readStoredModel(store, stored), imageShape);
      const calls: number[] = [];
      const counting: ServingModel = { ...served, predict: (images, count) => (calls.push(count), served.predict(images, count)) };
      for (const [count, batchSize] of [[700, 256], [100, 100]] as const) {
        calls.length = 0;
        let runs = 0;
        const latency = await measureLatency(counting, data.images.subarray(0, count * 64), count, () => runs++);
        assert.equal(latency.batchSize, batchSize);
        assert.deepEqual(calls, [...new Array(31).fill(1), ...new Array(6).fill(batchSize)]);
        assert.equal(runs, 37);
        assert.ok(latency.single > 0 && latency.batch > 0);
      }
      await served.dispose();
    }
  });
});
