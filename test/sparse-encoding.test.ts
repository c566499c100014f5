import type { Tensor } from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { magnitudeMask, prunableKernels } from '../lib/compression/magnitude-pruning';
import { decodeSparseModel, encodeSparseModel, filesSize, loadSparseModel } from '../lib/compression/sparse-encoding';
import { modelFiles } from '../lib/model-io';
import { buildModel } from '../lib/models';
import { modelSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';

const { tf } = tensorflow();

/** The reference CNN's shape on 28x28 images, every kernel pruned by magnitude to `sparsity`. */
function prunedModel(sparsity: number) {
  const model = buildModel(tf, modelSpecSchema.parse({ architecture: 'cnn', filters: [32, 64], hiddenUnits: [128] }), { height: 28, width: 28, channels: 1 }, 10, 5);
  for (const { kernel } of prunableKernels(model)) {
    const values = kernel.read();
    const mask = magnitudeMask(values.dataSync() as Float32Array, sparsity);
    kernel.write(tf.tidy(() => tf.where(tf.tensor(mask, values.shape, 'bool'), values, tf.zerosLike(values))));
  }
  return model;
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('sparse weight encoding', () => {
  it('decodes to the dense files byte for byte, and loads as a model that predicts exactly as the dense one', async () => {
    const model = prunedModel(0.8);
    const dense = await modelFiles(tf, model);
    const decoded = decodeSparseModel(encodeSparseModel(dense));
    assert.deepEqual(Object.keys(decoded).sort(), Object.keys(dense).sort());
    for (const name of Object.keys(dense)) assert.ok(equalBytes(decoded[name]!, dense[name]!), name);

    const loaded = await loadSparseModel(tf, encodeSparseModel(dense));
    const images = tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 1);
    const [expected, actual] = [model.predict(images) as Tensor, loaded.predict(images) as Tensor];
    assert.deepEqual([...actual.dataSync()], [...expected.dataSync()]);
  });

  it('keeps every bit pattern that is not +0: -0, subnormals, NaN, in tensors of any length', () => {
    const values = Float32Array.of(0, -0, 1e-45, NaN, 0, 0, 0, 0, 0, 2.5, 0, -3);
    const modelJson = {
      format: 'layers-model',
      modelTopology: {},
      weightsManifest: [{ paths: ['weights.bin'], weights: [{ name: 'a', shape: [3, 3], dtype: 'float32' }, { name: 'b', shape: [3], dtype: 'float32' }] }],
    };
    const dense = { 'model.json': Buffer.from(JSON.stringify(modelJson)), 'weights.bin': new Uint8Array(values.buffer) };
    const encoded = encodeSparseModel(dense);
    assert.deepEqual(JSON.parse(Buffer.from(encoded['sparse.json']!).toString()).tensors, [
      { name: 'a', size: 9, nonZero: 3 },
      { name: 'b', size: 3, nonZero: 2 },
    ]);
    assert.ok(equalBytes(decodeSparseModel(encoded)['weights.bin']!, dense['weights.bin']));
  });

  it('at 80% sparsity, gzipped, is at least 3x smaller than the dense float32 weights file', async () => {
    const dense = await modelFiles(tf, prunedModel(0.8));
    const sparse = encodeSparseModel(dense);
    const weightsBytes = dense['weights.bin']!.byteLength;
    const sparseGzip = filesSize(sparse).gzipBytes;
    console.log(
      `dense weights ${weightsBytes} B (gzip ${gzipSync(dense['weights.bin']!).byteLength} B); sparse ${filesSize(sparse).bytes} B, gzip ${sparseGzip} B: ${(weightsBytes / sparseGzip).toFixed(2)}x`,
    );
    assert.ok(weightsBytes / sparseGzip >= 3, `${weightsBytes} / ${sparseGzip}`);
    assert.ok(sparseGzip < gzipSync(dense['weights.bin']!).byteLength, 'smaller than the gzipped dense file too');
  });

  it('refuses weights that are not one file of plain float32', async () => {
    const dense = await modelFiles(tf, prunedModel(0.5));
    const modelJson = JSON.parse(Buffer.from(dense['model.json']!).toString());
    modelJson.weightsManifest[0].weights[0].dtype = 'int32';
    modelJson.weightsManifest[0].weights[0].quantization = { dtype: 'uint8', scale: 1, min: 0 };
    assert.throws(() => encodeSparseModel({ ...dense, 'model.json': Buffer.from(JSON.stringify(modelJson)) }), /not plain float32/);
  });
});
