import type { io } from '@tensorflow/tfjs';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { quantizeWeights, type QuantizeWeightsInput } from '../activities/quantization';
import { artifactStore } from '../lib/artifacts';
import type { CompressedModel } from '../lib/compression/compressed-model';
import { modelFiles } from '../lib/model-io';
import { quantizeVariantSchema } from '../lib/schemas/compression';
import { tensorflow, type TensorFlow } from '../lib/tf';
import { temporaryDataDir } from './helpers/temporal';
import { modelJsonUrl } from './helpers/local-store';

const variant = (dtype: 'float16' | 'uint8' | 'uint16') => quantizeVariantSchema.parse({ method: 'quantize', dtype });

function run(input: QuantizeWeightsInput, environment = new MockActivityEnvironment()): Promise<CompressedModel> {
  return environment.run(quantizeWeights, input) as Promise<CompressedModel>;
}

/** The user error the activity failed with: InvalidInput, not retried, its message starting with the field. */
async function invalidInput(result: Promise<unknown>, field: string): Promise<string> {
  const error = await result.then(
    () => assert.fail('expected the activity to fail'),
    (err: unknown) => err,
  );
  assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${error}`);
  assert.equal(error.type, 'InvalidInput');
  assert.equal(error.nonRetryable, true);
  assert.ok(error.message.startsWith(`${field}: `), error.message);
  return error.message;
}

/**
 * The activity in the SDK's own activity context (heartbeats recorded, cancellation delivered as a worker delivers it),
 * against this process's artifact store.
 */
describe('quantizeWeights activity', () => {
  let tf: TensorFlow;
  let files: Record<string, Uint8Array>;
  let modelUri: string;

  before(async () => {
    // Before anything reads the settings, which are read once.
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    tf = tensorflow().tf;
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [64], units: 32, activation: 'relu' }), tf.layers.dense({ units: 10 })] });
    files = await modelFiles(tf, model);
    model.dispose();
    modelUri = (await artifactStore().putDirectory(files)).uri;
  });

  const withModelJson = async (change: (json: io.ModelJSON & Record<string, unknown>) => void, extra: Record<string, Uint8Array> = {}) => {
    const json = JSON.parse(Buffer.from(files['model.json']!).toString('utf8')) as io.ModelJSON & Record<string, unknown>;
    change(json);
    return (await artifactStore().putDirectory({ ...files, ...extra, 'model.json': Buffer.from(JSON.stringify(json)) })).uri;
  };

  it('stores the quantized model as a content-addressed directory that stock tfjs loads, heartbeating per weight', async () => {
    const environment = new MockActivityEnvironment();
    const heartbeats: unknown[] = [];
    environment.on('heartbeat', (details: unknown) => heartbeats.push(details));
    const result = await run({ modelName: 'digits', modelUri, variant: variant('uint8') }, environment);

    assert.equal(result.format, 'tfjs-layers');
    assert.deepEqual(
      { dtype: result.details.dtype, tensorsQuantized: result.details.tensorsQuantized, tensorsKept: result.details.tensorsKept },
      { dtype: 'uint8', tensorsQuantized: 4, tensorsKept: 0 },
    );
    assert.ok(typeof result.details.maxAbsoluteError === 'number' && result.details.maxAbsoluteError > 0);
    const stored = await artifactStore().readDirectory(result.uri);
    assert.equal(result.bytes, Object.values(stored).reduce((sum, f) => sum + f.byteLength, 0));
    assert.deepEqual(heartbeats.at(-1), { tensorsDone: 4, tensors: 4 });

    const loaded = await tf.loadLayersModel(modelJsonUrl(result.uri));
    assert.deepEqual(loaded.outputs[0]!.shape, [null, 10]);
    loaded.dispose();

    const again = await run({ modelName: 'digits', modelUri, variant: variant('uint8') });
    assert.equal(again.uri, result.uri, 'a retry stores the same artifact');
  });

  it('refuses a graph model, naming modelUri', async () => {
    const graphUri = await withModelJson((json) => {
      json.format = 'graph-model';
    });
    assert.match(await invalidInput(run({ modelName: 'm', modelUri: graphUri, variant: variant('uint8') }), 'modelUri'), /not a TensorFlow\.js layers model: .*"graph-model"/);
  });

  it('refuses a directory without model.json, a model.json that is not JSON, and missing or short weight files', async () => {
    const store = artifactStore();
    const cases: [string, RegExp][] = [
      [(await store.putDirectory({ 'weights.bin': files['weights.bin']! })).uri, /no model\.json/],
      [(await store.putDirectory({ 'model.json': Buffer.from('{"modelTopology": '), 'weights.bin': files['weights.bin']! })).uri, /model\.json is not JSON/],
      [(await store.putDirectory({ 'model.json': files['model.json']! })).uri, /weights file weights\.bin named in model\.json is missing/],
      [(await store.putDirectory({ ...files, 'weights.bin': files['weights.bin']!.subarray(8) })).uri, /end before weight/],
      [await withModelJson((json) => void (json.modelTopology = { nodes: [] })), /no Keras model topology/],
    ];
    for (const [uri, problem] of cases) {
      assert.match(await invalidInput(run({ modelName: 'm', modelUri: uri, variant: variant('float16') }), 'modelUri'), problem);
    }
  });

  it('refuses a URI that is no stored model directory, or lies outside the store', async () => {
    const blob = (await artifactStore().putBlob(files['model.json']!, '.json')).uri;
    for (const uri of [blob, `${modelUri}-missing`, 'file:///etc', 'artifact://../elsewhere']) {
      await invalidInput(run({ modelName: 'm', modelUri: uri, variant: variant('uint8') }), 'modelUri');
    }
  });

  it('refuses weights holding NaN (naming modelUri) and, for float16, values beyond its range (naming variant.dtype)', async () => {
    const weights = new Float32Array(new Uint8Array(files['weights.bin']!).buffer);
    weights[5] = NaN;
    const nanUri = (await artifactStore().putDirectory({ ...files, 'weights.bin': new Uint8Array(weights.buffer) })).uri;
    assert.match(await invalidInput(run({ modelName: 'm', modelUri: nanUri, variant: variant('uint16') }), 'modelUri'), /holds NaN at index 5/);

    weights[5] = 1e6;
    const hugeUri = (await artifactStore().putDirectory({ ...files, 'weights.bin': new Uint8Array(weights.buffer) })).uri;
    assert.match(await invalidInput(run({ modelName: 'm', modelUri: hugeUri, variant: variant('float16') }), 'variant.dtype'), /beyond float16's range/);
    const uint8 = await run({ modelName: 'm', modelUri: hugeUri, variant: variant('uint8') });
    assert.equal(uint8.details.dtype, 'uint8');
  });

  it('hears of its cancellation at the next heartbeat and stops', async () => {
    const environment = new MockActivityEnvironment();
    let heartbeats = 0;
    environment.on('heartbeat', () => {
      heartbeats++;
      // A worker learns of a cancellation request in the server's answer to a heartbeat.
      environment.cancel();
    });
    const error = await run({ modelName: 'm', modelUri, variant: variant('uint8') }, environment).then(
      () => assert.fail('the activity ran to its end'),
      (err: unknown) => err,
    );
    assert.ok(error instanceof CancelledFailure, `got ${error}`);
    assert.equal(heartbeats, 1);
  });
});
