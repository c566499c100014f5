import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkPrunableTopology, keptUnits, planStructuredPruning, rebuildWithUnits, unitsBeforeAndAfter, UnsupportedModelError, type UnitSelection } from '../lib/compression/structured-pruning';
import { buildModel } from '../lib/models';
import { seededRandom } from '../lib/random';
import { modelSpecSchema, type ModelSpec } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';

const { tf } = tensorflow();
const input = { height: 12, width: 12, channels: 2 };

/** A zoo model with every weight (batch-norm statistics included) drawn at random, so no unit is like another. */
function randomModel(spec: Partial<ModelSpec>): LayersModel {
  const model = buildModel(tf, modelSpecSchema.parse(spec), input, 5, 1);
  const random = seededRandom(11);
  for (const weight of model.weights) {
    const positive = /moving_variance|gamma/.test(weight.originalName);
    const values = Float32Array.from({ length: weight.read().size }, () => (positive ? 0.5 + random() : random() * 2 - 1));
    weight.write(tf.tensor(values, weight.read().shape));
  }
  return model;
}

/** `model` with the pruned units' outputs forced to zero: their kernel slices, biases and batch-norm scale and shift. */
function zeroPrunedUnits(model: LayersModel, plan: UnitSelection[]): void {
  const layers = model.layers;
  for (const { layer: name, units, kept } of plan) {
    const index = layers.findIndex((l) => l.name === name);
    const pruned = new Float32Array(units).fill(0);
    kept.forEach((unit) => (pruned[unit] = 1));
    const keep = tf.tensor1d(pruned);
    const zeroLastAxis = (w: Tensor) => tf.mul(w, keep);
    const layer = layers[index]!;
    layer.setWeights(layer.getWeights().map(zeroLastAxis));
    const next = layers[index + 1]!;
    if (next.getClassName() === 'BatchNormalization') {
      // gamma and beta to zero: the normalized output of a zero channel is then exactly zero.
      next.setWeights(next.getWeights().map((w, i) => (i < 2 ? zeroLastAxis(w) : w)));
    }
  }
}

function unitsOf(model: LayersModel): number[] {
  return model.layers.filter((l) => ['Conv2D', 'Dense'].includes(l.getClassName())).map((l) => l.outputShape.at(-1) as number);
}

describe('structured pruning', () => {
  it('keeps the units with the largest L1 norms, at least one per layer', () => {
    assert.equal(keptUnits(32, 0.5), 16);
    assert.equal(keptUnits(5, 0.5), 2, 'half of 5 rounds to 3 removed');
    assert.equal(keptUnits(3, 0.99), 1);
    const model = buildModel(tf, modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [4] }), { height: 1, width: 1, channels: 3 }, 2, 1);
    // Column L1 norms 6, 0.5, 9, 1: the two largest are units 0 and 2.
    model.layers[1]!.setWeights([tf.tensor2d([[1, 0.5, -3, 1], [2, 0, 3, 0], [-3, 0, 3, 0]]), tf.zeros([4])]);
    assert.deepEqual(planStructuredPruning(tf, model, 0.5), [{ layer: model.layers[1]!.name, units: 4, kept: [0, 2] }]);
  });

  const cases: [string, Partial<ModelSpec>, number[], number[]][] = [
    ['a CNN with batch normalization and two convolutions per block', { architecture: 'cnn', filters: [6, 8], convsPerBlock: 2, hiddenUnits: [10, 7], batchNorm: true }, [6, 6, 8, 8, 10, 7, 5], [3, 3, 4, 4, 5, 3, 5]],
    ['a CNN with biases and dropout', { architecture: 'cnn', filters: [4], hiddenUnits: [9], dropout: 0.3 }, [4, 9, 5], [2, 4, 5]],
    ['an MLP', { architecture: 'mlp', hiddenUnits: [12, 6], batchNorm: true }, [12, 6, 5], [6, 3, 5]],
  ];
  for (const [name, spec, before, after] of cases) {
    it(`rebuilds ${name} with the declared shapes, computing what the original computes with the pruned units zeroed`, async () => {
      const original = randomModel(spec);
      const plan = planStructuredPruning(tf, original, 0.5);
      const smaller = await rebuildWithUnits(tf, original, plan);
      assert.deepEqual(unitsOf(original), before);
      assert.deepEqual(unitsOf(smaller), after, 'every hidden layer loses half its units; the output layer none');
      assert.ok(smaller.countParams() < original.countParams() * 0.6, `${smaller.countParams()} of ${original.countParams()} parameters`);
      const topology = (model: LayersModel) => JSON.parse(model.toJSON() as string);
      assert.deepEqual(
        unitsBeforeAndAfter(topology(original), topology(smaller)).map((l) => [l.before, l.after]),
        before.slice(0, -1).map((units, i) => [units, after[i]]),
      );

      const images = tf.randomUniform([16, input.height, input.width, input.channels], 0, 1, 'float32', 2);
      const unpruned = (original.predict(images) as Tensor).dataSync();
      zeroPrunedUnits(original, plan);
      const expected = (original.predict(images) as Tensor).dataSync();
      const actual = (smaller.predict(images) as Tensor).dataSync();
      const difference = Math.max(...actual.map((v, i) => Math.abs(v - expected[i]!)));
      console.log(`${name}: largest difference from the original with the units zeroed ${difference}`);
      assert.ok(difference <= 1e-6, `differs by ${difference}`);
      assert.ok(Math.max(...unpruned.map((v, i) => Math.abs(v - expected[i]!))) > 1e-3, 'zeroing the units changed the original’s outputs');
    });
  }

  it('refuses models it cannot shrink, naming what is in the way', () => {
    const topology = (layers: { class_name: string; config: object }[]) => ({ class_name: 'Sequential', config: { name: 's', layers } });
    assert.throws(() => checkPrunableTopology({ class_name: 'Model', config: {} }), UnsupportedModelError);
    assert.throws(() => checkPrunableTopology(topology([{ class_name: 'LSTM', config: { name: 'l' } }])), /layers of type LSTM/);
    assert.throws(() => checkPrunableTopology(topology([{ class_name: 'BatchNormalization', config: { name: 'bn', axis: 1 } }])), /bn is not over the last axis/);
    assert.doesNotThrow(() => checkPrunableTopology(JSON.parse(randomModel({ batchNorm: true }).toJSON() as string)));
  });
});
