import type { io } from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  dequantizeTensor,
  Float16RangeError,
  float16ToNumber,
  NonFiniteWeightError,
  numberToFloat16,
  quantizeTensor,
  type QuantizationDtype,
  type QuantizedTensor,
} from '../lib/compression/quantize';
import { seededRandom } from '../lib/random';
import { tensorflow } from '../lib/tf';

const { tf } = tensorflow();

function uniform(count: number, low: number, high: number, seed = 7): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: count }, () => low + (high - low) * random());
}

/** What stock tfjs-core loads from the quantized bytes: its own `decodeWeights`, the code `tf.loadLayersModel` runs. */
function loadedByTfjs(values: Float32Array, quantized: QuantizedTensor): Float32Array {
  const spec = { name: 'w', shape: [values.length], dtype: 'float32', quantization: quantized.quantization } as io.WeightsManifestEntry;
  const bytes = quantized.data.slice().buffer;
  const tensor = tf.io.decodeWeights(bytes, [spec])['w']!;
  const loaded = tensor.dataSync() as Float32Array;
  tensor.dispose();
  return loaded;
}

function maxError(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** Room for the float32 rounding of the dequantized value itself (tfjs stores it in a Float32Array). */
const float32Slack = (values: Float32Array) => Math.max(...values.map(Math.abs)) * 2 ** -24;

describe('weight quantization in the tfjs-converter format', () => {
  for (const [dtype, levels] of [['uint8', 255], ['uint16', 65535]] as const) {
    it(`${dtype}: stock tfjs loads what we dequantize, each value within scale/2, and 0 stays exactly 0`, async () => {
      const values = uniform(10_000, -0.37, 1.21);
      values[17] = 0;
      const quantized = await quantizeTensor('w', values, dtype);
      assert.ok(quantized.quantization.dtype === dtype);
      const { scale } = quantized.quantization;
      assert.ok(Math.abs(scale - (values.reduce((m, v) => Math.max(m, v)) - values.reduce((m, v) => Math.min(m, v))) / levels) < 1e-12);
      assert.ok(quantized.data instanceof (dtype === 'uint8' ? Uint8Array : Uint16Array));

      const loaded = loadedByTfjs(values, quantized);
      assert.deepEqual(loaded, dequantizeTensor(quantized.data, quantized.quantization));
      assert.ok(maxError(values, loaded) <= scale / 2 + float32Slack(values), `error ${maxError(values, loaded)} > scale/2 = ${scale / 2}`);
      assert.equal(quantized.maxAbsoluteError, maxError(values, loaded));
      assert.equal(loaded[17], 0);
    });

    it(`${dtype}: a constant tensor is stored as zeros with scale 1 and loads exactly`, async () => {
      const values = new Float32Array(300).fill(-0.8125);
      const quantized = await quantizeTensor('w', values, dtype);
      assert.deepEqual(quantized.quantization, { dtype, min: -0.8125, scale: 1, original_dtype: 'float32' });
      assert.ok(quantized.data.every((q) => q === 0));
      assert.deepEqual(loadedByTfjs(values, quantized), values);
      assert.equal(quantized.maxAbsoluteError, 0);
    });

    it(`${dtype}: a tensor of negative values only keeps its own range (no nudge towards 0)`, async () => {
      const values = uniform(5_000, -3.5, -1.25, 11);
      const low = values.reduce((m, v) => Math.min(m, v));
      const high = values.reduce((m, v) => Math.max(m, v));
      const quantized = await quantizeTensor('w', values, dtype);
      assert.ok(quantized.quantization.dtype === dtype);
      const { min, scale } = quantized.quantization;
      assert.equal(min, low);
      assert.ok(Math.abs(min + levels * scale - high) < 1e-12, 'the top level is the largest value');
      const loaded = loadedByTfjs(values, quantized);
      assert.ok(maxError(values, loaded) <= scale / 2 + float32Slack(values));
      assert.ok(loaded.every((v) => v < 0));
    });
  }

  it('uint8: halves round to the even level, as NumPy in tfjs-converter rounds (the zero point as well)', async () => {
    // A step of exactly 1; 0.5 steps from 0 to the minimum puts the zero point on a tie, which goes to 0, not 1.
    const quantized = await quantizeTensor('w', Float32Array.from([-0.5, 2.5, 3.5, 254.5]), 'uint8');
    assert.ok(quantized.quantization.dtype === 'uint8');
    assert.deepEqual([quantized.quantization.min, quantized.quantization.scale], [-0, 1]);
    assert.deepEqual([...quantized.data], [0, 2, 4, 254]);
    assert.equal(quantized.maxAbsoluteError, 0.5);
  });

  it('float16: stock tfjs loads what we dequantize, relative error at most 2^-11', async () => {
    const values = uniform(20_000, -300, 300, 3);
    const quantized = await quantizeTensor('w', values, 'float16');
    assert.deepEqual(quantized.quantization, { dtype: 'float16', original_dtype: 'float32' });
    const loaded = loadedByTfjs(values, quantized);
    assert.deepEqual(loaded, dequantizeTensor(quantized.data, quantized.quantization));
    for (let i = 0; i < values.length; i++) {
      const relative = Math.abs(values[i]! - loaded[i]!) / Math.abs(values[i]!);
      assert.ok(relative <= 2 ** -11, `value ${values[i]} loaded as ${loaded[i]}: relative error ${relative}`);
    }
    assert.equal(quantized.maxAbsoluteError, maxError(values, loaded));
    assert.ok(quantized.maxAbsoluteError > 0);
  });

  it('float16: rounds to nearest, ties to even, through subnormals up to the largest finite half', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway to the smallest subnormal: ties to even (0)
      [1.5 * 2 ** -25, 0x0001],
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: even mantissa wins
      [1 + 3 * 2 ** -11, 0x3c02],
      [2047 * 2 ** -11, 0x3bff],
      [4095 * 2 ** -12, 0x3c00], // rounding carries into the exponent
      [0.1, 0x2e66],
    ];
    for (const [value, bits] of cases) {
      assert.equal(numberToFloat16(value), bits, `${value} -> 0x${numberToFloat16(value).toString(16)}, want 0x${bits.toString(16)}`);
    }
  });

  it('float16: every finite half decodes as tfjs decodes it and encodes back to itself', () => {
    const finite = Uint16Array.from({ length: 0x10000 }, (_, bits) => bits).filter((bits) => (bits & 0x7c00) !== 0x7c00);
    const spec = { name: 'h', shape: [finite.length], dtype: 'float32', quantization: { dtype: 'float16' } } as io.WeightsManifestEntry;
    const tensor = tf.io.decodeWeights(finite.slice().buffer, [spec])['h']!;
    const byTfjs = tensor.dataSync();
    tensor.dispose();
    for (let i = 0; i < finite.length; i++) {
      const bits = finite[i]!;
      assert.ok(Object.is(float16ToNumber(bits), byTfjs[i]), `0x${bits.toString(16)}: ${float16ToNumber(bits)}, tfjs ${byTfjs[i]}`);
      assert.equal(numberToFloat16(float16ToNumber(bits)), bits);
    }
  });

  for (const bad of [NaN, Infinity, -Infinity]) {
    for (const dtype of ['float16', 'uint8', 'uint16'] as QuantizationDtype[]) {
      it(`${dtype}: refuses a tensor holding ${bad}, naming the weight and the index`, async () => {
        const values = uniform(100, -1, 1);
        values[42] = bad;
        await assert.rejects(quantizeTensor('dense_1/kernel', values, dtype), (err: Error) => {
          assert.ok(err instanceof NonFiniteWeightError);
          assert.match(err.message, new RegExp(`weight dense_1/kernel holds ${bad} at index 42`));
          return true;
        });
      });
    }
  }

  it('float16: refuses values beyond its range, which would load as Infinity; uint8 takes them', async () => {
    const values = Float32Array.from([1, -70_000, 2]);
    await assert.rejects(quantizeTensor('big', values, 'float16'), (err: Error) => err instanceof Float16RangeError && /weight big holds -70000/.test(err.message));
    await quantizeTensor('edge', Float32Array.from([65504, -65504]), 'float16');
    await quantizeTensor('big', values, 'uint8');
  });

  it('gives the event loop a turn between chunks of a large tensor', async () => {
    let pauses = 0;
    await quantizeTensor('w', new Float32Array(3 * 2 ** 20 + 5).fill(0.5).map((v, i) => v * (i % 7)), 'uint8', async () => {
      pauses++;
    });
    // Four chunks: a pause between each for the range pass, and again for the quantizing pass.
    assert.equal(pauses, 6);
  });
});
