import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tensorflow } from '../lib/tf';

/** Makes `@tensorflow/tfjs-node` fail to load, as on a machine without native TensorFlow. */
const withoutNative = `
  const Module = require('module');
  const load = Module._load;
  Module._load = function (request, ...rest) {
    if (request === '@tensorflow/tfjs-node') throw new Error('Cannot find module @tensorflow/tfjs-node');
    return load.call(this, request, ...rest);
  };
`;

describe('TensorFlow backend selection', () => {
  it('runs on native TensorFlow when TFJS_BACKEND=native (the suite fails rather than fall back silently)', () => {
    assert.equal(process.env.TFJS_BACKEND, 'native', 'npm test sets TFJS_BACKEND=native');
    const { tf, backend } = tensorflow();
    assert.equal(backend, 'tensorflow');
    assert.equal(tf.getBackend(), 'tensorflow');
  });

  it('falls back to the JS CPU backend with one warning, and still trains a model', () => {
    const script = `
      const { tensorflow } = require(${JSON.stringify(join(__dirname, '..', 'lib', 'tf.js'))});
      const { tf, backend } = tensorflow();
      tensorflow();
      const xs = tf.tensor2d([[0, 0], [0, 1], [1, 0], [1, 1]]);
      const ys = tf.tensor2d([[0], [1], [1], [0]]);
      const model = tf.sequential({ layers: [
        tf.layers.dense({ inputShape: [2], units: 8, activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ] });
      model.compile({ optimizer: tf.train.adam(0.1), loss: 'binaryCrossentropy' });
      model.fit(xs, ys, { epochs: 150, verbose: 0 }).then((h) => {
        console.log(JSON.stringify({ backend, active: tf.getBackend(), first: h.history.loss[0], last: h.history.loss.at(-1) }));
      });
    `;
    const run = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, TFJS_BACKEND: 'cpu' }, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
    assert.equal(result.backend, 'cpu');
    assert.equal(result.active, 'cpu');
    assert.ok(result.last < result.first / 4, `loss should fall: ${result.first} -> ${result.last}`);
  });

  it('warns once when native TensorFlow is missing in auto mode', () => {
    const script = `${withoutNative}
      const { tensorflow } = require(${JSON.stringify(join(__dirname, '..', 'lib', 'tf.js'))});
      tensorflow(); tensorflow();
      console.log(tensorflow().backend);
    `;
    const run = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, TFJS_BACKEND: 'auto' }, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'cpu');
    assert.equal(run.stderr.match(/falling back to the pure-JS CPU backend/g)?.length, 1);
  });

  it('refuses to run without native TensorFlow when TFJS_BACKEND=native', () => {
    const script = `${withoutNative}
      require(${JSON.stringify(join(__dirname, '..', 'lib', 'tf.js'))}).tensorflow();
    `;
    const run = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, TFJS_BACKEND: 'native' }, encoding: 'utf8' });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /TFJS_BACKEND=native but @tensorflow\/tfjs-node does not load/);
  });
});

describe('native Relu gradient', () => {
  it('equals the step function tfjs-core defines, zero at zero', () => {
    const { tf } = tensorflow();
    const x = tf.tensor1d([-2, -0.5, 0, 0.25, 3]);
    const dy = tf.tensor1d([1, 2, 3, 4, 5]);
    const [gradient] = tf.grads((input: import('@tensorflow/tfjs').Tensor) => tf.relu(input))([x], dy);
    assert.deepEqual(Array.from(gradient!.dataSync()), [0, 0, 0, 4, 5]);
  });
});
