import type { LayersModel, Tensor, io } from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import { type QuantizationDtype } from '../lib/compression/quantize';
import { quantizeLayersModel, type QuantizeProgress } from '../lib/compression/quantize-model';
import { modelFiles } from '../lib/model-io';
import { buildModel } from '../lib/models';
import { modelSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { digitTensors } from './helpers/digit-tensors';
import { modelJsonUrl } from './helpers/local-store';

const { tf } = tensorflow();
/** Per dtype: how much smaller the weights file must be, and how far a predicted probability may move. */
const EXPECTED: Record<QuantizationDtype, { shrink: number; drift: number }> = {
  float16: { shrink: 1.99, drift: 5e-3 },
  uint8: { shrink: 3.9, drift: 0.1 },
  uint16: { shrink: 1.99, drift: 5e-4 },
};

/** Weight file bytes of a stored layers model, as model.json lists them. */
function weightBytes(files: Record<string, Uint8Array>): number {
  const json = JSON.parse(Buffer.from(files['model.json']!).toString('utf8')) as io.ModelJSON;
  return json.weightsManifest.flatMap((g) => g.paths).reduce((sum, p) => sum + files[p]!.byteLength, 0);
}

function predictedClasses(probabilities: Float32Array): number[] {
  return Array.from({ length: probabilities.length / 10 }, (_, i) => {
    const row = probabilities.subarray(i * 10, i * 10 + 10);
    return row.indexOf(Math.max(...row));
  });
}

describe('quantized zoo models load in stock tfjs (real tfjs-node, built-in digits)', () => {
  const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'quantize-model-')));
  const train = digitTensors(tf, 100);
  const test = digitTensors(tf, 30, 100);
  after(() => tf.dispose([train.images, train.labels, test.images, test.labels]));

  for (const [label, spec] of [
    ['CNN', { architecture: 'cnn', filters: [8, 16], hiddenUnits: [32], dropout: 0 }],
    ['MLP', { architecture: 'mlp', hiddenUnits: [64, 32], dropout: 0 }],
  ] as const) {
    describe(label, () => {
      let original: LayersModel;
      let files: Record<string, Uint8Array>;
      let originalPredictions: Float32Array;

      before(async () => {
        original = buildModel(tf, modelSpecSchema.parse(spec), { height: 28, width: 28, channels: 1 }, 10, 5);
        original.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
        // Unshuffled: with the seeded initial weights, the same model every run, so its near-ties (which uint8 may flip) do not vary.
        await original.fit(train.images, train.labels, { epochs: 6, batchSize: 64, verbose: 0, shuffle: false });
        files = await modelFiles(tf, original);
        originalPredictions = tf.tidy(() => (original.predict(test.images) as Tensor).dataSync() as Float32Array);
      });
      after(() => original.dispose());

      for (const [dtype, expected] of Object.entries(EXPECTED) as [QuantizationDtype, (typeof EXPECTED)[QuantizationDtype]][]) {
        it(`${dtype}: tf.loadLayersModel('file://…') loads our files as they are and predicts within the quantization error`, async () => {
          const { files: quantized, report } = await quantizeLayersModel(files, dtype);
          const stored = await store.putDirectory(quantized);
          const loaded = await tf.loadLayersModel(modelJsonUrl(stored.uri, store));
          try {
            const manifest = (JSON.parse(Buffer.from(quantized['model.json']!).toString('utf8')) as io.ModelJSON).weightsManifest[0]!.weights;
            assert.equal(report.tensorsQuantized, original.weights.length);
            assert.ok(manifest.every((w) => w.dtype === 'float32' && w.quantization?.dtype === dtype));

            // Every weight tfjs loaded is within its own tensor's quantization error of the trained one.
            let largest = 0;
            for (const [i, weight] of original.weights.entries()) {
              const before = weight.read().dataSync();
              const after = loaded.weights[i]!.read().dataSync();
              const q = manifest[i]!.quantization!;
              for (let j = 0; j < before.length; j++) {
                const error = Math.abs(before[j]! - after[j]!);
                const bound = dtype === 'float16' ? Math.abs(before[j]!) * 2 ** -11 + 2 ** -25 : q.scale! / 2 + Math.abs(before[j]!) * 2 ** -24;
                assert.ok(error <= bound, `${weight.name}[${j}]: ${before[j]} loaded as ${after[j]}`);
                largest = Math.max(largest, error);
              }
            }
            assert.equal(report.maxAbsoluteError, largest);

            const predictions = tf.tidy(() => (loaded.predict(test.images) as Tensor).dataSync() as Float32Array);
            let drift = 0;
            for (let i = 0; i < predictions.length; i++) drift = Math.max(drift, Math.abs(predictions[i]! - originalPredictions[i]!));
            assert.ok(drift <= expected.drift, `a probability moved by ${drift}`);
            const before = predictedClasses(originalPredictions);
            const agreeing = predictedClasses(predictions).filter((c, i) => c === before[i]).length;
            assert.ok(agreeing >= 0.99 * before.length, `${agreeing} of ${before.length} predictions unchanged`);

            const shrink = weightBytes(files) / weightBytes(quantized);
            assert.ok(shrink >= expected.shrink, `weights file ${shrink.toFixed(3)}x smaller`);
            assert.deepEqual([report.weightBytesBefore, report.weightBytesAfter], [weightBytes(files), weightBytes(quantized)]);
          } finally {
            loaded.dispose();
          }
        });
      }
    });
  }
});

describe('quantizing a large model', () => {
  /** A 2048 x 2048 dense layer: 4M float32 weights, four chunks of work. */
  let files: Record<string, Uint8Array>;

  before(async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2048], units: 2048 })] });
    files = await modelFiles(tf, model);
    model.dispose();
  });

  it('keeps the event loop turning between chunks, reporting progress per weight', async () => {
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const progress: QuantizeProgress[] = [];
    const { report } = await quantizeLayersModel(files, 'uint8', { onProgress: (p) => progress.push(p) });
    ticking = false;
    assert.equal(report.tensorsQuantized, 2);
    // Kernel: 4 chunks scanned for the range, 4 quantized; the loop turns at least at each of the 6 seams between them.
    assert.ok(turns >= 6, `the event loop turned ${turns} times`);
    assert.deepEqual(progress, [
      { tensorsDone: 1, tensors: 2 },
      { tensorsDone: 2, tensors: 2 },
    ]);
  });

  it('stops at the next chunk once its signal is aborted, with the signal\'s reason', async () => {
    const controller = new AbortController();
    let pauses = 0;
    const reason = new Error('cancelled by the test');
    await assert.rejects(
      quantizeLayersModel(files, 'float16', {
        signal: controller.signal,
        pause: async () => {
          if (++pauses === 3) controller.abort(reason);
        },
      }),
      (err) => err === reason,
    );
    assert.equal(pauses, 3, 'no work after the abort');
  });
});

describe('weights that are not plain float32', () => {
  let files: Record<string, Uint8Array>;
  let original: Float32Array[];

  before(async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [6], units: 3, biasInitializer: 'randomNormal' })] });
    files = await modelFiles(tf, model);
    original = model.getWeights().map((w) => w.dataSync() as Float32Array);
    model.dispose();
  });

  it('keeps a non-float32 weight byte for byte, without quantization', async () => {
    const json = JSON.parse(Buffer.from(files['model.json']!).toString('utf8')) as io.ModelJSON;
    json.weightsManifest.push({ paths: ['steps.bin'], weights: [{ name: 'steps', shape: [3], dtype: 'int32' }] });
    const steps = new Uint8Array(Int32Array.from([7, -1, 1 << 30]).buffer);
    const { files: quantized, report } = await quantizeLayersModel({ ...files, 'model.json': Buffer.from(JSON.stringify(json)), 'steps.bin': steps }, 'uint8');
    assert.deepEqual([report.tensorsQuantized, report.tensorsKept], [2, 1]);
    const specs = (JSON.parse(Buffer.from(quantized['model.json']!).toString('utf8')) as io.ModelJSON).weightsManifest[0]!.weights;
    assert.deepEqual(specs[2], { name: 'steps', shape: [3], dtype: 'int32' });
    assert.deepEqual(Buffer.from(quantized['weights.bin']!.subarray(-12)), Buffer.from(steps));
  });

  it('re-quantizes an already quantized model from the values tfjs would load', async () => {
    const uint16 = await quantizeLayersModel(files, 'uint16');
    const uint8 = await quantizeLayersModel(uint16.files, 'uint8');
    const requantized = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'requantize-')));
    const stored = await requantized.putDirectory(uint8.files);
    const loaded = await tf.loadLayersModel(modelJsonUrl(stored.uri, requantized));
    try {
      const specs = (JSON.parse(Buffer.from(uint8.files['model.json']!).toString('utf8')) as io.ModelJSON).weightsManifest[0]!.weights;
      loaded.getWeights().forEach((weight, i) => {
        const values = weight.dataSync();
        const bound = specs[i]!.quantization!.scale! / 2 + uint16.report.maxAbsoluteError + 1e-6;
        values.forEach((v, j) => assert.ok(Math.abs(v - original[i]![j]!) <= bound, `weight ${i}[${j}]: ${original[i]![j]} loaded as ${v}`));
      });
      assert.equal(uint8.files['weights.bin']!.byteLength, (6 * 3 + 3) * 1);
    } finally {
      loaded.dispose();
    }
  });
});
