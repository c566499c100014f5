import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { loadSplitArrays } from '../lib/datasets/shards';
import { evaluateJob, type EvaluateJobInput, type EvaluationReport } from '../lib/evaluation/evaluate-job';
import { measureLatency } from '../lib/evaluation/latency';
import { onnxParameterCounts } from '../lib/evaluation/onnx-parameters';
import type { ServingModel } from '../lib/evaluation/serving-model';
import { loadServingModel, readStoredModel, type StoredModel } from '../lib/evaluation/stored-model';
import { modelFromFiles, saveModel } from '../lib/model-io';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { trainJob } from '../lib/training/train-job';
import { denseClassifierOnnx, type DenseLayerWeights } from './helpers/onnx-model';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';

describe('serving models: the same evaluation in tfjs-node and onnxruntime-node (real runtimes)', () => {
  const { tf } = tensorflow();
  const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'serving-model-')));
  const imageShape = [8, 8, 1];
  let manifestUri: string;
  /** A trained dense classifier: as TensorFlow.js layers and the same weights as ONNX. */
  let trained: { tfjs: StoredModel; onnx: StoredModel; layers: DenseLayerWeights[] };

  const job = (model: StoredModel): EvaluateJobInput => ({ artifactRoot: store.root, modelUri: model.uri, format: model.format, manifestUri, split: 'test' });

  /** Stores `layers` as a TensorFlow.js model of the trained one's architecture and as ONNX. */
  async function storeBoth(layers: DenseLayerWeights[], options: { int8Kernels?: boolean } = {}): Promise<{ tfjs: StoredModel; onnx: StoredModel }> {
    const model = await modelFromFiles(tf, await store.readDirectory(trained.tfjs.uri));
    const shapes = model.getWeights().map((w) => w.shape);
    model.setWeights(layers.flatMap(({ kernel, bias }, i) => [tf.tensor(kernel, shapes[2 * i]), tf.tensor(bias, shapes[2 * i + 1])]));
    const tfjs = { format: 'tfjs-layers' as const, uri: (await saveModel(tf, store, model)).uri };
    model.dispose();
    const onnx = { format: 'onnx' as const, uri: (await store.putBlob(denseClassifierOnnx(imageShape, layers, options), '.onnx')).uri };
    return { tfjs, onnx };
  }

  /** The trained weights with `share` of each kernel set to 0, and the number of zeros (biases of units that never fired stay 0). */
  function sparsified(share: number): { layers: DenseLayerWeights[]; zeros: number } {
    let zeros = 0;
    const layers = trained.layers.map(({ kernel, bias }) => {
      const sparse = kernel.map((w, i) => (i % Math.round(1 / (1 - share)) === 0 ? w : 0));
      zeros += sparse.filter((w) => w === 0).length + bias.filter((b) => b === 0).length;
      return { kernel: sparse, bias };
    });
    return { layers, zeros };
  }

  before(async () => {
    manifestUri = await writeSyntheticDataset(store, 256, { testCount: 700 });
    const model = modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [64], dropout: 0 });
    const training = trainingSpecSchema.parse({ epochs: 2, batchSize: 32, learningRate: 0.01, earlyStopping: null });
    const { modelUri } = await trainJob({ artifactRoot: store.root, manifestUri, model, training }, () => undefined);
    const loaded = await modelFromFiles(tf, await store.readDirectory(modelUri));
    const weights = loaded.getWeights().map((w) => w.dataSync() as Float32Array);
    loaded.dispose();
    const layers = [0, 2].map((i) => ({ kernel: weights[i]!, bias: weights[i + 1]! }));
    assert.ok(layers.every((l) => l.kernel.every((w) => w !== 0)), 'trained weights are all non-zero');
    trained = { tfjs: { format: 'tfjs-layers', uri: modelUri }, onnx: { format: 'onnx', uri: (await store.putBlob(denseClassifierOnnx(imageShape, layers), '.onnx')).uri }, layers };
  });

  it('scores a real .onnx file in onnxruntime-node with the accuracy and loss tfjs-node gives the same weights', async () => {
    const [tfjs, onnx] = [await evaluateJob(job(trained.tfjs), () => undefined), await evaluateJob(job(trained.onnx), () => undefined)];
    assert.equal(tfjs.runtime, tensorflow().backend === 'tensorflow' ? 'tfjs-node' : 'tfjs-cpu');
    assert.equal(onnx.runtime, 'onnxruntime-node');
    assert.equal(onnx.count, 700);
    assert.ok(tfjs.accuracy > 0.5, `the trained model learned something (accuracy ${tfjs.accuracy})`);
    assert.equal(onnx.accuracy, tfjs.accuracy);
    assert.ok(Math.abs(onnx.loss - tfjs.loss) < 1e-5, `loss ${onnx.loss} in onnxruntime, ${tfjs.loss} in tfjs`);
    assert.equal(onnx.parameterCount, tfjs.parameterCount);
    const report = await store.readJson<EvaluationReport>(onnx.reportUri);
    assert.deepEqual([report.format, report.modelUri, report.runtime], ['onnx', trained.onnx.uri, 'onnxruntime-node']);

    // Every probability, not only the argmax, agrees.
    const data = await loadSplitArrays(store, await store.readJson<DatasetManifest>(manifestUri), 'test');
    const served = await Promise.all([trained.tfjs, trained.onnx].map(async (m) => loadServingModel(m.format, await readStoredModel(store, m), imageShape)));
    const [fromTfjs, fromOnnx] = await Promise.all(served.map((m) => m.predict(data.images, data.count)));
    await Promise.all(served.map((m) => m.dispose()));
    assert.equal(fromOnnx!.length, 700 * 4);
    assert.ok(fromOnnx!.every((p, i) => Math.abs(p - fromTfjs![i]!) < 1e-5), 'probabilities differ by more than 1e-5');
  });

  it('counts non-zero parameters, the same in both runtimes', async () => {
    const { layers, zeros } = sparsified(0.75);
    const both = await storeBoth(layers);
    const [tfjs, onnx] = [await evaluateJob(job(both.tfjs), () => undefined), await evaluateJob(job(both.onnx), () => undefined)];
    const total = trained.layers.reduce((n, l) => n + l.kernel.length + l.bias.length, 0);
    assert.equal(tfjs.parameterCount, total);
    assert.equal(onnx.parameterCount, total);
    assert.ok(zeros > total / 2);
    assert.equal(tfjs.nonZeroParameters, total - zeros);
    assert.equal(onnx.nonZeroParameters, total - zeros);
  });

  it('does not count quantization scales and zero points of int8 weights as parameters; weights quantized to 0 are zeros', () => {
    const { layers, zeros } = sparsified(0.5);
    const total = trained.layers.reduce((n, l) => n + l.kernel.length + l.bias.length, 0);
    const counts = onnxParameterCounts(denseClassifierOnnx(imageShape, layers, { int8Kernels: true }));
    assert.equal(counts.parameterCount, total);
    // Symmetric int8 keeps a 0 as 0 and rounds only the smallest weights to it.
    assert.ok(counts.nonZeroParameters <= total - zeros && counts.nonZeroParameters > total - zeros - total / 20, `${counts.nonZeroParameters} of ${total}`);
  });

  it('serves int8 weights in onnxruntime-node within the quantization error of the float model', async () => {
    const int8 = { format: 'onnx' as const, uri: (await store.putBlob(denseClassifierOnnx(imageShape, trained.layers, { int8Kernels: true }), '.onnx')).uri };
    const [float, quantized] = [await evaluateJob(job(trained.onnx), () => undefined), await evaluateJob(job(int8), () => undefined)];
    assert.ok(Math.abs(quantized.accuracy - float.accuracy) <= 0.02, `int8 ${quantized.accuracy}, float ${float.accuracy}`);
    assert.ok(quantized.modelBytes < float.modelBytes / 3, `int8 file ${quantized.modelBytes} bytes, float ${float.modelBytes}`);
  });

  it('gzips the stored files together: a mostly zero model shrinks, a dense one hardly does', async () => {
    const sparse = await storeBoth(sparsified(0.9).layers);
    for (const [dense, zeroed] of [[trained.tfjs, sparse.tfjs], [trained.onnx, sparse.onnx]] as const) {
      const [d, z] = [await evaluateJob(job(dense), () => undefined), await evaluateJob(job(zeroed), () => undefined)];
      assert.equal(z.modelBytes, d.modelBytes, `${dense.format}: zeros take as many bytes on disk`);
      assert.ok(d.gzipBytes > 0.8 * d.modelBytes, `${dense.format}: trained float weights gzip to ${d.gzipBytes} of ${d.modelBytes} bytes`);
      assert.ok(z.gzipBytes < 0.35 * z.modelBytes, `${dense.format}: 90% zeros gzip to ${z.gzipBytes} of ${z.modelBytes} bytes`);
    }
    const tfjsFiles = await readStoredModel(store, trained.tfjs);
    assert.deepEqual(Object.keys(tfjsFiles).sort(), ['model.json', 'weights.bin']);
    assert.equal((await evaluateJob(job(trained.tfjs), () => undefined)).modelBytes, tfjsFiles['model.json']!.length + tfjsFiles['weights.bin']!.length);
  });

  it('times one image and a batch of up to 256, each after a warm-up call, in either runtime', async () => {
    const data = await loadSplitArrays(store, await store.readJson<DatasetManifest>(manifestUri), 'test');
    for (const stored of [trained.tfjs, trained.onnx]) {
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
