import type { PreprocessSpec } from '../../schemas/preprocess';

/** The part of a spec decoding depends on. */
export type DecodeTarget = Pick<PreprocessSpec, 'width' | 'height' | 'channels' | 'fit' | 'background'>;

/** Where a decoded image lands: resized to `resizeWidth` x `resizeHeight`, then cropped (cover) or letterboxed (contain) at `left`, `top`. */
export interface Placement {
  resizeWidth: number;
  resizeHeight: number;
  left: number;
  top: number;
}

/** sharp's geometry: the resized size rounds, cover crops from the centre rounding up, contain embeds rounding down. */
export function placement(width: number, height: number, { width: tw, height: th, fit }: DecodeTarget): Placement {
  if (fit === 'fill') return { resizeWidth: tw, resizeHeight: th, left: 0, top: 0 };
  const scale = fit === 'cover' ? Math.max(tw / width, th / height) : Math.min(tw / width, th / height);
  const clamp = (size: number, target: number) => (fit === 'cover' ? Math.max(target, size) : Math.min(target, Math.max(1, size)));
  const resizeWidth = clamp(Math.round(width * scale), tw);
  const resizeHeight = clamp(Math.round(height * scale), th);
  if (fit === 'cover') return { resizeWidth, resizeHeight, left: Math.floor((resizeWidth - tw + 1) / 2), top: Math.floor((resizeHeight - th + 1) / 2) };
  return { resizeWidth, resizeHeight, left: Math.floor((tw - resizeWidth) / 2), top: Math.floor((th - resizeHeight) / 2) };
}

/** sRGB byte to linear light. */
const LINEAR = Float64Array.from({ length: 256 }, (_, v) => (v / 255 <= 0.04045 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4));

/** Linear light to an sRGB byte. */
const encoded = (y: number) => Math.round(255 * (y <= 0.0031308 ? 12.92 * y : 1.055 * y ** (1 / 2.4) - 0.055));

/**
 * `encoded` over ENCODE_BUCKETS equal slices of [0, 1]: its value where the slice's ends agree (it is monotonic, so
 * the whole slice does), else -1. Saves a power per pixel for all but the few slices a step of the byte falls in.
 */
const ENCODE_BUCKETS = 65536;
let encodedBuckets: Int16Array | undefined;
function bucketsOfEncoded(): Int16Array {
  const buckets = new Int16Array(ENCODE_BUCKETS);
  let low = encoded(0);
  for (let i = 0; i < ENCODE_BUCKETS; i++) {
    const high = encoded((i + 1) / ENCODE_BUCKETS);
    buckets[i] = low === high ? low : -1;
    low = high;
  }
  return buckets;
}

/** sharp's grayscale: Rec. 709 luminance in linear light, encoded back to sRGB. */
export function luminance(r: number, g: number, b: number): number {
  const y = 0.2126 * LINEAR[r]! + 0.7152 * LINEAR[g]! + 0.0722 * LINEAR[b]!;
  encodedBuckets ??= bucketsOfEncoded();
  const bucket = encodedBuckets[Math.min(ENCODE_BUCKETS - 1, Math.floor(y * ENCODE_BUCKETS))]!;
  return bucket >= 0 ? bucket : encoded(y);
}

/** Crops (cover) or letterboxes (contain) the resized pixels into `out`, converting to the target's channels. */
export function writeTarget(data: Int32Array | Uint8Array, width: number, height: number, channels: number, place: Placement, target: DecodeTarget, out: Uint8Array): void {
  const { width: tw, height: th, channels: tc, fit } = target;
  if (width === tw && height === th && channels === tc) {
    out.set(data);
    return;
  }
  if (fit === 'contain') out.fill(target.background);
  const crop = fit === 'cover';
  // The columns of the source row that land in the target row.
  const firstX = crop ? 0 : Math.max(0, place.left);
  const endX = crop ? tw : Math.min(tw, place.left + width);
  for (let y = 0; y < th; y++) {
    const sy = crop ? y + place.top : y - place.top;
    if (sy < 0 || sy >= height) continue;
    if (channels === tc) {
      const from = (sy * width + (crop ? firstX + place.left : firstX - place.left)) * channels;
      out.set(data.subarray(from, from + (endX - firstX) * channels), (y * tw + firstX) * tc);
      continue;
    }
    for (let x = firstX; x < endX; x++) {
      const from = (sy * width + (crop ? x + place.left : x - place.left)) * channels;
      const to = (y * tw + x) * tc;
      if (channels === 1) out[to] = out[to + 1] = out[to + 2] = data[from]!;
      else out[to] = luminance(data[from]!, data[from + 1]!, data[from + 2]!);
    }
  }
}
