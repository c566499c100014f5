import sharp from 'sharp';

export interface ImageShape {
  width: number;
  height: number;
  channels: 1 | 3;
}

/** Decompression-bomb guard: images claiming more pixels than this are refused before decoding. */
export const MAX_INPUT_PIXELS = 64_000_000;

/**
 * Decodes any image sharp reads, honours EXIF orientation, resizes to the target shape and returns its pixels
 * scaled to [0, 1], height x width x channels.
 */
export async function decodeImage(bytes: Buffer, shape: ImageShape): Promise<Float32Array> {
  let pipeline = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
    .rotate()
    .resize(shape.width, shape.height, { fit: 'fill' });
  pipeline = shape.channels === 1 ? pipeline.toColourspace('b-w') : pipeline.removeAlpha().toColourspace('srgb');
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== shape.channels || info.width !== shape.width || info.height !== shape.height) {
    throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${shape.width}x${shape.height}x${shape.channels}`);
  }
  const pixels = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) pixels[i] = data[i]! / 255;
  return pixels;
}
