import { crc32, inflateSync } from 'node:zlib';

/** An 8-bit PNG without alpha, decoded to its own size: `channels` 1 (grey) or 3 (RGB, palettes expanded). */
export interface PngPixels {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

const IHDR = 0x49484452;
const PLTE = 0x504c5445;
const IDAT = 0x49444154;
const IEND = 0x49454e44;
const TRNS = 0x74524e53;

/** The longest chunk libpng reads by default (PNG_USER_CHUNK_MALLOC_MAX); longer ones it refuses. */
const MAX_CHUNK_BYTES = 8_000_000;

const GREY = 0;
const RGB = 2;
const PALETTE = 3;

/**
 * Decodes a non-interlaced, 8-bit, grey, RGB or palette PNG without transparency: the PNG images of a dataset already
 * at its training size, where a TensorFlow op costs several times the decode itself. Lossless, so the pixels are
 * exactly those of every other PNG decoder. Returns null for any other PNG, and for one whose chunks (their names,
 * sizes and order, a duplicate or oversized palette, an unknown critical one), checksums or compressed data are not
 * exactly right, or not what libpng accepts: another decoder then decides. The caller has checked the signature.
 */
export function decodeSimplePng(bytes: Uint8Array): PngPixels | null {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let width = 0;
  let height = 0;
  let colourType = -1;
  let palette: Buffer | undefined;
  const compressed: Buffer[] = [];
  let afterImageData = false;
  let pos = 8;
  for (;;) {
    if (pos + 12 > data.length) return null;
    const length = data.readUInt32BE(pos);
    const end = pos + 8 + length;
    if (end + 4 > data.length || crc32(data.subarray(pos + 4, end)) !== data.readUInt32BE(end)) return null;
    if (length > MAX_CHUNK_BYTES || !isChunkName(data.subarray(pos + 4, pos + 8))) return null;
    const type = data.readUInt32BE(pos + 4);
    const body = data.subarray(pos + 8, end);
    if (type === IHDR) {
      if (length !== 13 || width !== 0) return null;
      [width, height, colourType] = [body.readUInt32BE(0), body.readUInt32BE(4), body[9]!];
      const [bitDepth, compression, filter, interlace] = [body[8]!, body[10]!, body[11]!, body[12]!];
      if (bitDepth !== 8 || compression !== 0 || filter !== 0 || interlace !== 0 || width === 0 || height === 0) return null;
      if (colourType !== GREY && colourType !== RGB && colourType !== PALETTE) return null;
    } else if (width === 0) return null;
    else if (type === PLTE) {
      if (palette || colourType === GREY || compressed.length > 0 || length === 0 || length % 3 !== 0 || length > 3 * 256) return null;
      palette = body;
    } else if (type === IDAT) {
      if (afterImageData) return null;
      compressed.push(body);
    } else if (type === IEND) break;
    // Transparency, or a critical chunk (upper-case first letter) this decoder does not know.
    else if (type === TRNS || (data[pos + 4]! & 0x20) === 0) return null;
    if (compressed.length > 0 && type !== IDAT) afterImageData = true;
    pos = end + 4;
  }
  if (compressed.length === 0 || (colourType === PALETTE && !palette)) return null;
  const samples = colourType === RGB ? 3 : 1;
  const stride = width * samples;
  const filteredBytes = height * (stride + 1);
  let filtered: Buffer;
  try {
    // Bounded: a few compressed bytes can claim gigabytes.
    filtered = inflateSync(compressed.length === 1 ? compressed[0]! : Buffer.concat(compressed), { maxOutputLength: filteredBytes });
  } catch {
    return null;
  }
  if (filtered.length !== filteredBytes) return null;
  const pixels = new Uint8Array(height * stride);
  if (!unfilter(filtered, pixels, height, stride, samples)) return null;
  if (colourType !== PALETTE) return { width, height, channels: samples as 1 | 3, data: pixels };
  const rgb = new Uint8Array(width * height * 3);
  const colours = palette!.length / 3;
  for (let i = 0; i < pixels.length; i++) {
    const index = pixels[i]!;
    if (index >= colours) return null;
    rgb[i * 3] = palette![index * 3]!;
    rgb[i * 3 + 1] = palette![index * 3 + 1]!;
    rgb[i * 3 + 2] = palette![index * 3 + 2]!;
  }
  return { width, height, channels: 3, data: rgb };
}

/** Four ASCII letters, as every chunk type is. */
function isChunkName(name: Uint8Array): boolean {
  return name.every((c) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a));
}

/** Undoes PNG's per-row filters (none, sub, up, average, Paeth) into `out`; false on an unknown filter type. */
function unfilter(filtered: Uint8Array, out: Uint8Array, height: number, stride: number, bpp: number): boolean {
  for (let y = 0; y < height; y++) {
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const above = row - stride;
    const filter = filtered[src - 1]!;
    switch (filter) {
      case 0:
        out.set(filtered.subarray(src, src + stride), row);
        break;
      case 1:
        for (let x = 0; x < stride; x++) out[row + x] = filtered[src + x]! + (x >= bpp ? out[row + x - bpp]! : 0);
        break;
      case 2:
        for (let x = 0; x < stride; x++) out[row + x] = filtered[src + x]! + (y > 0 ? out[above + x]! : 0);
        break;
      case 3:
        for (let x = 0; x < stride; x++) {
          const left = x >= bpp ? out[row + x - bpp]! : 0;
          const up = y > 0 ? out[above + x]! : 0;
          out[row + x] = filtered[src + x]! + ((left + up) >> 1);
        }
        break;
      case 4:
        for (let x = 0; x < stride; x++) {
          const left = x >= bpp ? out[row + x - bpp]! : 0;
          const up = y > 0 ? out[above + x]! : 0;
          const upLeft = x >= bpp && y > 0 ? out[above + x - bpp]! : 0;
          out[row + x] = filtered[src + x]! + paeth(left, up, upLeft);
        }
        break;
      default:
        return false;
    }
  }
  return true;
}

function paeth(left: number, up: number, upLeft: number): number {
  const estimate = left + up - upLeft;
  const toLeft = Math.abs(estimate - left);
  const toUp = Math.abs(estimate - up);
  const toUpLeft = Math.abs(estimate - upLeft);
  if (toLeft <= toUp && toLeft <= toUpLeft) return left;
  return toUp <= toUpLeft ? up : upLeft;
}
