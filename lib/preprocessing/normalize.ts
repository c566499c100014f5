import type { PreprocessSpec } from '../schemas/preprocess';

/** How pixels are stored in shards: `uint8` as decoded (normalized when fed to a model), `float32` already normalized. */
export type ShardStorage = PreprocessSpec['storage'];

/** Writes `(pixel * scale - mean[c]) / std[c]` for the pixels of one or more images into `out` at `offset`. */
export function normalizeInto(pixels: Uint8Array, spec: Pick<PreprocessSpec, 'normalization' | 'channels'>, out: Float32Array, offset: number): void {
  const { scale, mean, std } = spec.normalization;
  const channels = spec.channels;
  if (mean.length === 1 && std.length === 1) {
    const m = mean[0]!;
    const s = std[0]!;
    if (m === 0 && s === 1) {
      for (let i = 0; i < pixels.length; i++) out[offset + i] = pixels[i]! * scale;
    } else {
      for (let i = 0; i < pixels.length; i++) out[offset + i] = (pixels[i]! * scale - m) / s;
    }
    return;
  }
  for (let i = 0; i < pixels.length; i++) {
    const c = i % channels;
    out[offset + i] = (pixels[i]! * scale - (mean[c] ?? mean[0]!)) / (std[c] ?? std[0]!);
  }
}

/** Shard pixels as the model takes them: float32 shards are already normalized, uint8 shards are normalized here. */
export function normalizedPixels(data: Uint8Array | Float32Array, spec: Pick<PreprocessSpec, 'normalization' | 'channels'>): Float32Array {
  if (data instanceof Float32Array) return data;
  const out = new Float32Array(data.length);
  normalizeInto(data, spec, out, 0);
  return out;
}

/** Bytes one pixel channel takes at rest. */
export const bytesPerValue = (storage: ShardStorage): number => (storage === 'uint8' ? 1 : 4);
