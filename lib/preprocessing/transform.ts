import sharp from 'sharp';
import { seededRandom } from '../random';
import { withSharp, withSharpAlone } from '../sharp-gate';
import type { Augmentation, PreprocessSpec } from '../schemas/preprocess';
import type { LimitedSpec } from './limits';
import { failureDecodedAlone, mayBeAnotherFailure } from './quarantine';

/** Pixels already decoded (an IDX record): one byte per channel, row-major. */
export interface RawImage {
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
}

export type ImageInput = Buffer | RawImage;

/**
 * Decodes any image sharp reads (or takes raw pixels), honours EXIF orientation, flattens transparency onto the
 * background, converts to grayscale or sRGB and resizes with the spec's fit mode. Returns height x width x channels
 * bytes. A file that fails among other decodes is decoded again alone, and fails with what that decode says: libvips
 * may have given the first failure another image's reason, or none (see sharp-gate).
 */
export async function toPixels(input: ImageInput, spec: LimitedSpec): Promise<Uint8Array> {
  if (!Buffer.isBuffer(input)) {
    if (input.width === spec.width && input.height === spec.height && input.channels === spec.channels) return input.pixels;
    return withSharp(() => resized(sharp(input.pixels, { raw: { width: input.width, height: input.height, channels: input.channels } }), spec));
  }
  const decoding = () => resized(sharp(input, { limitInputPixels: spec.maxInputPixels, failOn: 'truncated' }).rotate(), spec);
  try {
    return await withSharp(decoding);
  } catch (err) {
    if (!mayBeAnotherFailure(err)) throw err;
    return withSharpAlone(decoding).catch((err: unknown) => {
      throw failureDecodedAlone(err);
    });
  }
}

async function resized(image: sharp.Sharp, spec: LimitedSpec): Promise<Uint8Array> {
  const { width, height, channels } = spec;
  const background = { r: spec.background, g: spec.background, b: spec.background, alpha: 1 };
  image = image.flatten({ background }).resize(width, height, { fit: spec.fit, background });
  const { data, info } = await inColourspace(image, channels).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== channels || info.width !== width || info.height !== height) {
    throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x${channels}`);
  }
  return data;
}

/** Grayscale or sRGB output, without alpha: sharp would otherwise widen one-channel input to three. */
function inColourspace(image: sharp.Sharp, channels: 1 | 3): sharp.Sharp {
  return channels === 1 ? image.toColourspace('b-w') : image.removeAlpha().toColourspace('srgb');
}

/** A reproducible seed for one augmented copy of one image: the same image, seed and copy always augment the same way. */
export function augmentationSeed(augmentation: Augmentation, contentSha256: string, copy: number): number {
  return (parseInt(contentSha256.slice(8, 16), 16) ^ Math.imul(augmentation.seed + 1, 0x9e3779b1) ^ Math.imul(copy + 1, 0x85ebca6b)) >>> 0;
}

/** One randomly cropped, flipped, rotated and brightened copy of a preprocessed image, same shape. */
export async function augment(pixels: Uint8Array, spec: PreprocessSpec, augmentation: Augmentation, seed: number): Promise<Uint8Array> {
  const random = seededRandom(seed);
  const { width, height, channels } = spec;
  const raw = { raw: { width, height, channels } };
  const keep = 1 - random() * augmentation.cropFraction;
  const cropWidth = Math.max(1, Math.round(width * keep));
  const cropHeight = Math.max(1, Math.round(height * keep));
  let image = sharp(pixels, raw)
    .extract({ left: Math.floor(random() * (width - cropWidth + 1)), top: Math.floor(random() * (height - cropHeight + 1)), width: cropWidth, height: cropHeight })
    .resize(width, height, { fit: 'fill' });
  if (augmentation.horizontalFlip && random() < 0.5) image = image.flop();
  if (augmentation.verticalFlip && random() < 0.5) image = image.flip();
  let out: Uint8Array = await withSharp(() => inColourspace(image, channels).raw().toBuffer());
  const angle = (random() * 2 - 1) * augmentation.rotationDegrees;
  if (Math.abs(angle) >= 0.5) {
    const background = { r: spec.background, g: spec.background, b: spec.background, alpha: 1 };
    const rotation = inColourspace(sharp(out, raw).rotate(angle, { background }), channels);
    const rotated = await withSharp(() => rotation.raw().toBuffer({ resolveWithObject: true }));
    out = centreWindow(rotated.data, rotated.info.width, rotated.info.height, width, height, channels);
  }
  const factor = 1 + (random() * 2 - 1) * augmentation.brightness;
  if (factor !== 1) for (let i = 0; i < out.length; i++) out[i] = Math.min(255, Math.round(out[i]! * factor));
  return out;
}

/** The central width x height window of a larger raw image (what stays in frame after rotating about the centre). */
function centreWindow(data: Uint8Array, fromWidth: number, fromHeight: number, width: number, height: number, channels: number): Uint8Array {
  const out = new Uint8Array(width * height * channels);
  const left = Math.floor((fromWidth - width) / 2);
  const top = Math.floor((fromHeight - height) / 2);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * fromWidth + left) * channels;
    out.set(data.subarray(from, from + width * channels), y * width * channels);
  }
  return out;
}
