import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../lib/compression/onnx/graph-builder';
import { decodeModel, encodeModel } from '../lib/compression/onnx/onnx-proto';

const close = (actual: ArrayLike<number>, expected: number[]) => {
  assert.equal(actual.length, expected.length);
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i]! - e) < 1e-6, `element ${i}: ${actual[i]} vs ${e}`));
};

describe('ONNX encoder (models written by us, run by real onnxruntime-node)', () => {
  it('computes relu(x W + b) for a hand-checked dense layer', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', ['batch', 3]);
    const w = g.constant('w', [3, 2], Float32Array.of(1, -1, 2, 0, -3, 1));
    const b = g.constant('b', [2], Float32Array.of(0.5, -4));
    g.output(g.node('Relu', [g.node('Add', [g.node('MatMul', [x, w], 'xw'), b], 'xwb')], 'y'), ['batch', 2]);
    const session = await ort.InferenceSession.create(encodeModel(g.build('dense')));
    const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, -1, 0, 1), [2, 3]) });
    // Row 1: x = [1, 2, 3]: [1*1 + 2*2 + 3*-3, 1*-1 + 2*0 + 3*1] = [-4, 2], + b = [-3.5, -2], relu = [0, 0].
    // Row 2: x = [-1, 0, 1]: [-1 + 0 - 3, 1 + 0 + 1] = [-4, 2], + b = [-3.5, -2], relu = [0, 0].
    close(y!.data as Float32Array, [0, 0, 0, 0]);
    const { y: y2 } = await session.run({ x: new ort.Tensor('float32', Float32Array.of(3, 0, 0, 0, 1, -2), [2, 3]) });
    // Row 1: [3, -3] + b = [3.5, -7] -> [3.5, 0]; row 2: [2 + 6, 0 - 2] + b = [8.5, -6] -> [8.5, 0].
    close(y2!.data as Float32Array, [3.5, 0, 8.5, 0]);
    await session.release();
  });

  it('writes integer-list and integer attributes: a padded 2x2 convolution and a softmax over axis 1', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', [1, 1, 2, 2]);
    const w = g.constant('w', [1, 1, 2, 2], Float32Array.of(1, 2, 3, 4));
    const conv = g.node('Conv', [x, w], 'conv', { kernel_shape: [2, 2], pads: [1, 1, 0, 0], strides: [1, 1] });
    g.output(conv, [1, 1, 2, 2]);
    g.output(g.node('Softmax', [g.node('Flatten', [conv], 'flat', { axis: 1 })], 'p', { axis: 1 }), [1, 4]);
    const model = g.build('conv');
    const session = await ort.InferenceSession.create(encodeModel(model));
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [1, 1, 2, 2]) });
    // Padding one row on top and one column on the left, the kernel [[1, 2], [3, 4]] slides over
    // [[0, 0, 0], [0, 1, 2], [0, 3, 4]]: [4, 3*1 + 4*2, 2*1 + 4*3, 1*1 + 2*2 + 3*3 + 4*4] = [4, 11, 14, 30].
    close(out.conv!.data as Float32Array, [4, 11, 14, 30]);
    const e = [4, 11, 14, 30].map((v) => Math.exp(v - 30));
    close(out.p!.data as Float32Array, e.map((v) => v / e.reduce((a, b) => a + b)));
    await session.release();
    assert.deepEqual(
      decodeModel(encodeModel(model)).graph.node.map((n) => n.opType),
      ['Conv', 'Flatten', 'Softmax'],
    );
  });
});
