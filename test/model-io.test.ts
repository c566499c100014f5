import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import { modelFromFiles, saveModel } from '../lib/model-io';
import { buildModel } from '../lib/models';
import { modelSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import type { Tensor } from '@tensorflow/tfjs';
import { modelJsonUrl } from './helpers/local-store';

const tf = () => tensorflow().tf;

describe('model zoo and model files', () => {
  it('builds the declared MLP and CNN', () => {
    const mlp = buildModel(tf(), modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [32, 16], dropout: 0 }), { height: 8, width: 8, channels: 1 }, 3, 1);
    assert.equal(mlp.countParams(), 64 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3);
    const cnn = buildModel(tf(), modelSpecSchema.parse({ architecture: 'cnn', filters: [4], kernelSize: 3, hiddenUnits: [8] }), { height: 8, width: 8, channels: 1 }, 3, 1);
    assert.equal(cnn.layers.filter((l) => l.getClassName() === 'Conv2D').length, 1);
    assert.deepEqual(cnn.outputs[0]!.shape, [null, 3]);
  });

  it('is seeded: the same seed builds the same weights', () => {
    const spec = modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [4] });
    const weights = (seed: number) => buildModel(tf(), spec, { height: 2, width: 2, channels: 1 }, 2, seed).getWeights()[0]!.arraySync();
    assert.deepEqual(weights(7), weights(7));
    assert.notDeepEqual(weights(7), weights(8));
  });

  it('saves in the stock layers format that tf.loadLayersModel reads back', async () => {
    const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'models-')));
    const model = buildModel(tf(), modelSpecSchema.parse({ architecture: 'cnn', filters: [4], hiddenUnits: [8] }), { height: 8, width: 8, channels: 1 }, 3, 1);
    const saved = await saveModel(tf(), store, model);
    const input = tf().randomUniform([2, 8, 8, 1], 0, 1, 'float32', 5);
    const expected = (model.predict(input) as Tensor).arraySync();
    const stock = await tf().loadLayersModel(modelJsonUrl(saved.uri, store));
    const ours = await modelFromFiles(tf(), await store.readDirectory(saved.uri));
    assert.deepEqual((stock.predict(input) as Tensor).arraySync(), expected);
    assert.deepEqual((ours.predict(input) as Tensor).arraySync(), expected);
    assert.equal((await saveModel(tf(), store, model)).uri, saved.uri, 'saving the same model twice is idempotent');
  });
});
