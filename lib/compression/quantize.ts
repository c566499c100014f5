/**
 * Weight quantization exactly as tfjs-converter writes it and tfjs-core's `decodeWeights` reads it:
 * - `float16`: IEEE half precision, rounded to nearest even; decoded by table lookup.
 * - `uint8` / `uint16`: affine per tensor, `value = q * scale + min`, with the range nudged so that 0 is exactly
 *   representable whenever the tensor spans it (as TF-Lite does), and a constant tensor stored as zeros with
 *   `scale: 1` and `min` the constant.
 */

export type QuantizationDtype = 'float16' | 'uint8' | 'uint16';

/** The `quantization` field of a weights manifest entry, as tfjs-converter writes it. */
export type WeightQuantization =
  | { dtype: 'float16'; original_dtype: 'float32' }
  | { dtype: 'uint8' | 'uint16'; min: number; scale: number; original_dtype: 'float32' };

export interface QuantizedTensor {
  data: Uint8Array | Uint16Array;
  quantization: WeightQuantization;
  /** The largest |original - dequantized| over the tensor, dequantized the way tfjs does (into float32). */
  maxAbsoluteError: number;
}

/** A weight holding NaN or ±Infinity: no affine range holds it, and tfjs would load NaN for every element. */
export class NonFiniteWeightError extends Error {
  override name = 'NonFiniteWeightError';
}

/** A weight with magnitudes float16 cannot hold (it would load as ±Infinity). */
export class Float16RangeError extends Error {
  override name = 'Float16RangeError';
}

/** The largest finite float16. Values from 65520 up round to Infinity. */
export const FLOAT16_MAX = 65504;

/** Elements handled between two yields to the event loop: a few milliseconds of work. */
const CHUNK = 1 << 20;

/** Lets timers, I/O and heartbeats run between chunks of a long loop. */
export type Yield = () => Promise<void>;
export const yieldToEventLoop: Yield = () => new Promise((resolve) => setImmediate(resolve));

/** Quantizes one float32 tensor. Refuses NaN and ±Infinity and, for float16, values beyond ±65504. */
export async function quantizeTensor(name: string, values: Float32Array, dtype: QuantizationDtype, pause: Yield = yieldToEventLoop): Promise<QuantizedTensor> {
  const { min, max } = await rangeOf(name, values, pause);
  if (dtype === 'float16') {
    if (Math.max(-min, max) >= FLOAT16_MAX + 16) {
      throw new Float16RangeError(`weight ${name} holds ${max >= -min ? max : min}, beyond float16's range (±${FLOAT16_MAX}); use uint8 or uint16`);
    }
    return toFloat16(values, pause);
  }
  return toAffine(values, dtype, min, max, pause);
}

/** The float32 values tfjs loads from a quantized tensor. */
export function dequantizeTensor(data: Uint8Array | Uint16Array, quantization: WeightQuantization): Float32Array {
  const values = new Float32Array(data.length);
  if (quantization.dtype === 'float16') {
    for (let i = 0; i < data.length; i++) values[i] = float16ToNumber(data[i]!);
  } else {
    for (let i = 0; i < data.length; i++) values[i] = data[i]! * quantization.scale + quantization.min;
  }
  return values;
}

async function rangeOf(name: string, values: Float32Array, pause: Yield): Promise<{ min: number; max: number }> {
  let min = Infinity;
  let max = -Infinity;
  for (let start = 0; start < values.length; start += CHUNK) {
    if (start > 0) await pause();
    const end = Math.min(start + CHUNK, values.length);
    for (let i = start; i < end; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) throw new NonFiniteWeightError(`weight ${name} holds ${v} at index ${i}; only finite weights can be quantized`);
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return { min, max };
}

async function toFloat16(values: Float32Array, pause: Yield): Promise<QuantizedTensor> {
  const data = new Uint16Array(values.length);
  let maxAbsoluteError = 0;
  for (let start = 0; start < values.length; start += CHUNK) {
    if (start > 0) await pause();
    const end = Math.min(start + CHUNK, values.length);
    for (let i = start; i < end; i++) {
      const bits = numberToFloat16(values[i]!);
      data[i] = bits;
      maxAbsoluteError = Math.max(maxAbsoluteError, Math.abs(values[i]! - float16ToNumber(bits)));
    }
  }
  return { data, quantization: { dtype: 'float16', original_dtype: 'float32' }, maxAbsoluteError };
}

async function toAffine(values: Float32Array, dtype: 'uint8' | 'uint16', min: number, max: number, pause: Yield): Promise<QuantizedTensor> {
  const data = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  if (values.length === 0 || min === max) {
    // Every element is the constant: zeros decode to it exactly.
    return { data, quantization: { dtype, min: values.length ? min : 0, scale: 1, original_dtype: 'float32' }, maxAbsoluteError: 0 };
  }
  const { scale, low, high } = affineRange(min, max, dtype === 'uint8' ? 0xff : 0xffff);
  const decoded = new Float32Array(1);
  let maxAbsoluteError = 0;
  for (let start = 0; start < values.length; start += CHUNK) {
    if (start > 0) await pause();
    const end = Math.min(start + CHUNK, values.length);
    for (let i = start; i < end; i++) {
      const v = values[i]!;
      const q = roundHalfToEven((Math.min(Math.max(v, low), high) - low) / scale);
      data[i] = q;
      decoded[0] = q * scale + low;
      maxAbsoluteError = Math.max(maxAbsoluteError, Math.abs(v - decoded[0]));
    }
  }
  return { data, quantization: { dtype, min: low, scale, original_dtype: 'float32' }, maxAbsoluteError };
}

/**
 * tfjs-converter's `_get_affine_quantization_range`: when the tensor spans 0, the range is shifted by less than half a
 * step so that 0 falls exactly on a quantized value (zero padding and ReLU zeros stay exact); otherwise it is [min, max].
 */
function affineRange(min: number, max: number, quantMax: number): { scale: number; low: number; high: number } {
  const scale = (max - min) / quantMax;
  if (min <= 0 && 0 <= max) {
    const zeroPoint = roundHalfToEven(-min / scale);
    const low = -zeroPoint * scale;
    return { scale, low, high: quantMax * scale + low };
  }
  return { scale, low: min, high: max };
}

/** NumPy's `np.round`: halves go to the even neighbour. */
function roundHalfToEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

const float32 = new Float32Array(1);
const float32Bits = new Uint32Array(float32.buffer);

/** The float16 bit pattern nearest to `value` (ties to even), as NumPy's `astype(np.float16)` gives. */
export function numberToFloat16(value: number): number {
  float32[0] = value;
  const bits = float32Bits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (((bits >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  if (exponent >= 0x1f) return sign | 0x7c00;
  if (exponent <= 0) {
    // Subnormal: the implicit leading bit becomes explicit and the whole significand shifts right.
    if (exponent < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - exponent;
    return sign | roundShift(significand, shift);
  }
  // A carry out of the mantissa correctly bumps the exponent (up to Infinity).
  return sign | ((exponent << 10) + roundShift(mantissa, 13));
}

/** `value >> shift`, rounded to nearest, ties to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value - kept * 2 ** shift;
  const half = 2 ** (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
