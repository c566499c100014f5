import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HISTOGRAM_BINS, MinMaxCollector, PercentileCollector } from '../lib/compression/onnx/calibration-ranges';
import { activationParams, quantizeBias, quantizePerChannel, WEIGHT_MAX } from '../lib/compression/onnx/quantization';
import { seededRandom } from '../lib/random';

describe('static quantization maths', () => {
  it('per output channel: rows of conv weights, scale = max |w| / 63, round trip within scale / 2', () => {
    // Two output channels of 3 weights each: [out, in*kh*kw].
    const weights = Float32Array.of(0.5, -1.27, 0.01, 100, -25, 0.3);
    const { values, scales } = quantizePerChannel(weights, 2, 'rows');
    assert.equal(WEIGHT_MAX, 63);
    assert.deepEqual(Array.from(scales), [Math.fround(1.27 / 63), Math.fround(100 / 63)]);
    assert.deepEqual(Array.from(values), [25, -63, 0, 63, -16, 0]);
    weights.forEach((w, i) => assert.ok(Math.abs(values[i]! * scales[Math.floor(i / 3)]! - w) <= scales[Math.floor(i / 3)]! / 2 + 1e-7));
  });

  it('per output column of dense weights [in, out]; an all-zero (pruned) column keeps a positive scale', () => {
    const weights = Float32Array.of(1, 0, -4, 0.25, 0, 1);
    const { values, scales } = quantizePerChannel(weights, 3, 'columns');
    assert.deepEqual(Array.from(scales), [Math.fround(1 / 63), 1, Math.fround(4 / 63)]);
    assert.deepEqual(Array.from(values), [63, 0, -63, 16, 0, 16]);
  });

  it('round trip error of random weights never exceeds half a step of their channel', () => {
    const random = seededRandom(7);
    const channels = 8;
    const weights = Float32Array.from({ length: channels * 50 }, () => (random() - 0.5) * 4);
    const { values, scales } = quantizePerChannel(weights, channels, 'columns');
    weights.forEach((w, i) => {
      const scale = scales[i % channels]!;
      assert.ok(Math.abs(values[i]! * scale - w) <= scale / 2 + 1e-7, `weight ${i}`);
      assert.ok(Math.abs(values[i]!) <= WEIGHT_MAX);
    });
  });

  it('activations: the range widened to hold 0, mapped onto uint8 or int8, zero exact', () => {
    assert.deepEqual(activationParams({ min: 0, max: 5.1 }, 'uint8'), { scale: 5.1 / 255, zeroPoint: 0 });
    assert.deepEqual(activationParams({ min: 0, max: 5.1 }, 'int8'), { scale: 5.1 / 255, zeroPoint: -128 });
    // Strictly positive values still map 0 exactly (padding, relu): the range becomes [0, 3].
    assert.deepEqual(activationParams({ min: 1, max: 3 }, 'uint8'), { scale: 3 / 255, zeroPoint: 0 });
    const { scale, zeroPoint } = activationParams({ min: -1, max: 3 }, 'uint8');
    assert.equal(scale, 4 / 255);
    assert.equal(zeroPoint, 64);
    // -1 and 3 land on the ends of [0, 255] within one step.
    assert.ok(Math.abs(-1 / scale + zeroPoint - 0) < 1);
    assert.ok(Math.abs(3 / scale + zeroPoint - 255) < 1);
    // Values beyond the range are clipped by QuantizeLinear: the largest representable value is the range's end.
    assert.ok(Math.abs((255 - zeroPoint) * scale - 3) <= scale / 2);
  });

  it('biases as int32 in the scale input scale x weight scale', () => {
    const { values, scales } = quantizeBias(Float32Array.of(0.3, -1), 0.1, Float32Array.of(0.01, 0.5));
    assert.deepEqual(Array.from(scales), [Math.fround(Math.fround(0.01) * 0.1), Math.fround(0.5 * 0.1)]);
    assert.deepEqual(Array.from(values), [300, -20]);
  });
});

describe('calibration ranges', () => {
  it('min-max is exact over every batch seen', () => {
    const collector = new MinMaxCollector();
    collector.add(Float32Array.of(0.5, 2, -0.25));
    collector.add(Float32Array.of(7.5, 1));
    assert.deepEqual(collector.range(), { min: -0.25, max: 7.5 });
  });

  const collect = (values: Float32Array[], percentile: number) => {
    const minMax = new MinMaxCollector();
    values.forEach((v) => minMax.add(v));
    const histogram = new PercentileCollector(minMax.range());
    values.forEach((v) => histogram.add(v));
    return { full: minMax.range(), range: histogram.range(percentile) };
  };

  it('percentile keeps the central share of the values, cutting each tail equally, within one histogram bin', () => {
    // 0..99999 in two batches; 99% cuts 500 values from each end: [500, 99499].
    const values = Float32Array.from({ length: 100_000 }, (_, i) => i);
    const { full, range } = collect([values.subarray(0, 30_000), values.subarray(30_000)], 99);
    const bin = (full.max - full.min) / HISTOGRAM_BINS;
    assert.ok(Math.abs(range.min - 500) <= bin, `min ${range.min}`);
    assert.ok(Math.abs(range.max - 99_499) <= bin, `max ${range.max}`);
    assert.deepEqual(collect([values], 100).range, full);
  });

  it('percentile leaves rare outliers outside the range, where min-max would spend nearly every step on them', () => {
    const body = Float32Array.from({ length: 10_000 }, (_, i) => i / 10_000);
    const { full, range } = collect([body, Float32Array.of(-1000, 1000)], 99.9);
    assert.deepEqual(full, { min: -1000, max: 1000 });
    const bin = 2000 / HISTOGRAM_BINS;
    assert.ok(range.min >= -bin && range.max <= 1 + bin, `range [${range.min}, ${range.max}]`);
  });
});
