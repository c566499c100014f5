/** The integer maths of static quantization: int8 weights per channel, 8-bit activations per tensor, int32 biases. */

export type ActivationType = 'uint8' | 'int8';

export interface ChannelQuantized {
  values: Int8Array;
  /** One scale per output channel; the zero point is 0 (symmetric). */
  scales: Float32Array;
}

export interface AffineParams {
  scale: number;
  zeroPoint: number;
}

/**
 * Weights use 7 of int8's 8 bits, as onnxruntime's `reduce_range` does: on x86 CPUs without VNNI its uint8 x int8
 * kernels add pairs of products in int16 (VPMADDUBSW), and 255 x 127 x 2 overflows it. Measured on the digits: a
 * batch-normalized CNN lost 0.7 pp with [-127, 127] weights and nothing with [-63, 63].
 */
export const WEIGHT_MAX = 63;
const ACTIVATION_RANGE: Record<ActivationType, [number, number]> = { uint8: [0, 255], int8: [-128, 127] };

/**
 * Symmetric int8 quantization with one scale per output channel: scale = max |w| / WEIGHT_MAX over the channel,
 * values round(w / scale) in [-WEIGHT_MAX, WEIGHT_MAX]. `layout` says where the channels lie: `rows` for conv weights [out, in, kh, kw]
 * (channel c is one contiguous block), `columns` for dense weights [in, out] (channel c is column c).
 */
export function quantizePerChannel(weights: Float32Array, channels: number, layout: 'rows' | 'columns'): ChannelQuantized {
  const perChannel = weights.length / channels;
  const channelOf = layout === 'rows' ? (i: number) => Math.floor(i / perChannel) : (i: number) => i % channels;
  const maxAbs = new Float32Array(channels);
  weights.forEach((w, i) => {
    const c = channelOf(i);
    maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(w));
  });
  // An all-zero channel (pruned away) still needs a positive scale; its values are all 0 whatever the scale.
  const scales = maxAbs.map((m) => (m > 0 ? m / WEIGHT_MAX : 1));
  const values = new Int8Array(weights.length);
  weights.forEach((w, i) => {
    values[i] = Math.max(-WEIGHT_MAX, Math.min(WEIGHT_MAX, Math.round(w / scales[channelOf(i)]!)));
  });
  return { values, scales };
}

/**
 * Scale and zero point mapping [min, max] (widened to hold 0, so zero is exact: padding and relu) onto the 8-bit
 * range; values outside are clipped by QuantizeLinear.
 */
export function activationParams(range: { min: number; max: number }, type: ActivationType): AffineParams {
  const [qmin, qmax] = ACTIVATION_RANGE[type];
  const min = Math.min(range.min, 0);
  const max = Math.max(range.max, 0);
  const scale = max > min ? (max - min) / (qmax - qmin) : 1;
  const zeroPoint = Math.max(qmin, Math.min(qmax, Math.round(qmin - min / scale)));
  return { scale, zeroPoint };
}

/** Biases as int32 in the accumulator's scale, input scale x weight scale, as QLinearConv and QGemm add them. */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): { values: Int32Array; scales: Float32Array } {
  const scales = weightScales.map((s) => s * inputScale);
  return { values: Int32Array.from(bias, (b, c) => Math.round(b / scales[c]!)), scales };
}

/** The storage array of an activation type, for zero points. */
export function zeroPointArray(type: ActivationType, zeroPoint: number): Uint8Array | Int8Array {
  return type === 'uint8' ? Uint8Array.of(zeroPoint) : Int8Array.of(zeroPoint);
}
