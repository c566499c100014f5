import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportOnnx } from '../activities/onnx';
import { artifactStore } from '../lib/artifacts';
import type { CompressedModel } from '../lib/compression/compressed-model';
import { exportJob } from '../lib/compression/onnx/export-job';
import { readManifest } from '../lib/datasets/manifest';
import { loadSplit } from '../lib/datasets/shards';
import { modelFiles, modelFromFiles } from '../lib/model-io';
import { int8VariantSchema, onnxVariantSchema, type Int8Variant } from '../lib/schemas/compression';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { trainJob } from '../lib/training/train-job';
import { preprocessDigits } from './helpers/digits';
import { temporaryDataDir } from './helpers/temporal';

// Before anything reads the settings: this file's artifacts go to a store of its own.
process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
const { tf } = tensorflow();

interface Scores {
  probabilities: Float32Array;
  logits: Float32Array;
}

/** The stored model with its last layer's softmax removed: the scores ONNX exposes as `logits`. */
async function tfjsLogitsModel(files: Record<string, Uint8Array>): Promise<LayersModel> {
  const json = JSON.parse(Buffer.from(files['model.json']!).toString('utf8')) as { modelTopology: { config: { layers: { config: { activation?: string } }[] } } };
  const last = json.modelTopology.config.layers.at(-1)!;
  assert.equal(last.config.activation, 'softmax');
  last.config.activation = 'linear';
  return modelFromFiles(tf, { ...files, 'model.json': Buffer.from(JSON.stringify(json)) });
}

async function onnxScores(uri: string, images: Tensor): Promise<Scores> {
  const session = await ort.InferenceSession.create(await artifactStore().read(uri));
  try {
    const out = await session.run({ images: new ort.Tensor('float32', images.dataSync() as Float32Array, images.shape) });
    return { probabilities: out.probabilities!.data as Float32Array, logits: out.logits!.data as Float32Array };
  } finally {
    await session.release();
  }
}

const argmaxes = (scores: Float32Array, classes: number) =>
  Array.from({ length: scores.length / classes }, (_, i) => {
    const row = scores.subarray(i * classes, (i + 1) * classes);
    return row.indexOf(Math.max(...row));
  });
const maxDifference = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('ONNX export of zoo models trained on the built-in digits (real tfjs-node, real onnxruntime-node)', () => {
  let manifestUri: string;
  let test: { images: Tensor; labels: number[]; classes: number };
  const models: Record<string, string> = {};
  const exported = new Map<string, CompressedModel>();
  const exportAs = async (model: string, variant: unknown) => {
    const key = `${model} ${JSON.stringify(variant)}`;
    if (!exported.has(key)) {
      const parsed = (variant as { method: string }).method === 'onnx' ? onnxVariantSchema.parse(variant) : int8VariantSchema.parse(variant);
      exported.set(key, await exportJob({ artifacts: await artifactStore().describeForChild(), modelUri: models[model]!, manifestUri, variant: parsed }, () => undefined));
    }
    return exported.get(key)!;
  };
  const accuracyOf = (scores: Float32Array) => argmaxes(scores, test.classes).filter((c, i) => c === test.labels[i]).length / test.labels.length;

  before(async () => {
    manifestUri = await preprocessDigits(4000);
    // Dropout (unseeded in the zoo) only in the MLP: the CNNs train the same way in every run.
    const training = { epochs: 3, batchSize: 32, learningRate: 0.003, earlyStopping: null };
    const specs = {
      mlp: [{ architecture: 'mlp', hiddenUnits: [64, 32], dropout: 0.2 }, training],
      cnn: [{ architecture: 'cnn', filters: [8, 16], kernelSize: [5, 3], hiddenUnits: [32], dropout: 0 }, training],
      // Batch normalization's moving statistics (momentum 0.99) need a few hundred steps to settle.
      'cnn-batchnorm': [
        { architecture: 'cnn', filters: [8, 16], kernelSize: [3, 4], convsPerBlock: 2, hiddenUnits: [32], batchNorm: true, dropout: 0 },
        { ...training, epochs: 4, batchSize: 16 },
      ],
    };
    for (const [name, [spec, schedule]] of Object.entries(specs)) {
      const { modelUri } = await trainJob(
        { artifacts: await artifactStore().describeForChild(), manifestUri, model: modelSpecSchema.parse(spec), training: trainingSpecSchema.parse(schedule) },
        () => undefined,
      );
      models[name] = modelUri;
    }
    const manifest = await readManifest(artifactStore(), manifestUri);
    const data = await loadSplit(tf, artifactStore(), manifest, 'test');
    test = { images: data.images, labels: Array.from(data.labels.argMax(1).dataSync()), classes: manifest.classes.length };
  });

  for (const name of ['mlp', 'cnn', 'cnn-batchnorm']) {
    it(`float32 ${name}: same argmax as tfjs on ≥99.9% of the test split, logits and probabilities within 1e-4`, async () => {
      const files = await artifactStore().readDirectory(models[name]!);
      const model = await modelFromFiles(tf, files);
      const logitsModel = await tfjsLogitsModel(files);
      const expected = {
        probabilities: (model.predict(test.images) as Tensor).dataSync() as Float32Array,
        logits: (logitsModel.predict(test.images) as Tensor).dataSync() as Float32Array,
      };
      const onnx = await onnxScores((await exportAs(name, { method: 'onnx' })).uri, test.images);
      const same = argmaxes(onnx.probabilities, test.classes).filter((c, i) => c === argmaxes(expected.probabilities, test.classes)[i]).length;
      assert.ok(test.labels.length >= 700, `${test.labels.length} test images`);
      assert.ok(same / test.labels.length >= 0.999, `${same} of ${test.labels.length} agree`);
      assert.ok(maxDifference(onnx.logits, expected.logits) <= 1e-4, `logits differ by ${maxDifference(onnx.logits, expected.logits)}`);
      assert.ok(maxDifference(onnx.probabilities, expected.probabilities) <= 1e-4);
      // A model that learned something: the comparison is between real predictions.
      assert.ok(accuracyOf(expected.probabilities) > 0.8, `tfjs accuracy ${accuracyOf(expected.probabilities)}`);
      model.dispose();
      logitsModel.dispose();
    });
  }

  const int8Cases: { model: string; variant: Partial<Int8Variant> }[] = [
    { model: 'cnn-batchnorm', variant: { format: 'qdq' } },
    { model: 'cnn-batchnorm', variant: { format: 'qoperator' } },
    { model: 'cnn', variant: { format: 'qdq', activations: 'int8', calibration: { method: 'percentile', percentile: 99.99, samples: 256 } } },
    { model: 'mlp', variant: { format: 'qoperator', activations: 'int8' } },
  ];
  for (const { model, variant } of int8Cases) {
    it(`int8 ${model} ${JSON.stringify(variant)}: runs on integer kernels within 0.5 pp of the float model's accuracy`, async () => {
      const float = await onnxScores((await exportAs(model, { method: 'onnx' })).uri, test.images);
      const int8 = await exportAs(model, { method: 'int8', ...variant });
      const scores = await onnxScores(int8.uri, test.images);
      const drop = accuracyOf(float.probabilities) - accuracyOf(scores.probabilities);
      assert.ok(drop <= 0.005, `accuracy ${accuracyOf(scores.probabilities)} vs float ${accuracyOf(float.probabilities)}`);
      const kernels = int8.details.kernels as Record<string, number>;
      if (model !== 'mlp') {
        assert.ok(kernels.QLinearConv! >= 2, JSON.stringify(kernels));
        assert.equal(kernels.Conv, undefined, 'no float convolution left');
      }
      assert.ok(kernels.QGemm! >= 2, JSON.stringify(kernels));
      assert.equal(kernels.MatMul ?? kernels.Gemm ?? kernels.FusedGemm, undefined, 'no float dense layer left');
      const parsed = int8VariantSchema.parse({ method: 'int8', ...variant });
      assert.deepEqual(int8.details.calibration, {
        method: parsed.calibration.method,
        samples: parsed.calibration.samples,
        ...(parsed.calibration.method === 'percentile' ? { percentile: parsed.calibration.percentile } : {}),
      });
      assert.equal(int8.details.opset, 13);
      // int8 weights: about a quarter of the float file.
      const floatBytes = (await exportAs(model, { method: 'onnx' })).bytes;
      assert.ok(int8.bytes < floatBytes / 3, `${int8.bytes} bytes vs float ${floatBytes}`);
    });
  }

  describe('exportOnnx activity', () => {
    const run = (environment: MockActivityEnvironment, input: Parameters<typeof exportOnnx>[0]) => environment.run(exportOnnx, input) as Promise<CompressedModel>;
    const exportChildren = () => {
      try {
        return execFileSync('pgrep', ['-P', String(process.pid), '-f', 'export-job'], { encoding: 'utf8' }).trim();
      } catch {
        return '';
      }
    };

    it('stores a content-addressed .onnx file, the same one again on a retry, heartbeating calibration progress', async () => {
      const environment = new MockActivityEnvironment();
      const heartbeats: { stage: string; imagesDone: number }[] = [];
      environment.on('heartbeat', (details: { stage: string; imagesDone: number }) => heartbeats.push(details));
      const input = { modelName: 'digits', modelUri: models['cnn']!, manifestUri, variant: int8VariantSchema.parse({ method: 'int8', calibration: { samples: 200 } }) };
      const first = await run(environment, input);
      const again = await run(new MockActivityEnvironment(), input);
      assert.equal(first.format, 'onnx');
      assert.match(first.uri, /\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\.onnx$/);
      assert.deepEqual(again, first);
      assert.equal((await artifactStore().read(first.uri)).byteLength, first.bytes);
      assert.deepEqual(
        heartbeats.map((h) => `${h.stage} ${h.imagesDone}`),
        ['model-read 0', 'calibrating 64', 'calibrating 128', 'calibrating 192', 'calibrating 200', 'stored 200'],
      );
    });

    it('refuses a layer it cannot translate without retrying, naming modelUri and the layer', async () => {
      const model = tf.sequential({
        layers: [tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 2, kernelSize: 3 }), tf.layers.globalAveragePooling2d({}), tf.layers.dense({ units: 10 })],
      });
      const { uri } = await artifactStore().putDirectory(await modelFiles(tf, model));
      await assert.rejects(run(new MockActivityEnvironment(), { modelName: 'odd', modelUri: uri, manifestUri, variant: onnxVariantSchema.parse({ method: 'onnx' }) }), (err: Error) => {
        assert.ok(err instanceof ApplicationFailure && err.nonRetryable, String(err));
        assert.ok(err.message.startsWith(`modelUri: ${uri}: `), err.message);
        assert.match(err.message, /layer global_average_pooling2d_\w+ \(GlobalAveragePooling2D\)/);
        return true;
      });
    });

    it('cancellation kills the export child and the activity ends cancelled', async () => {
      const environment = new MockActivityEnvironment();
      environment.on('heartbeat', () => environment.cancel());
      const input = { modelName: 'digits', modelUri: models['cnn-batchnorm']!, manifestUri, variant: int8VariantSchema.parse({ method: 'int8' }) };
      await assert.rejects(run(environment, input), (err: Error) => err instanceof CancelledFailure);
      assert.equal(exportChildren(), '', 'no export child left running');
    });
  });
});
