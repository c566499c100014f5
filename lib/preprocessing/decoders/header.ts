import type { QuarantineReason } from '../quarantine';

/** The formats TensorFlow decodes. */
export type FastFormat = 'jpeg' | 'png' | 'gif' | 'bmp';

/** What an image file's header says, as far as choosing a decoder needs. */
export interface ImageHeader {
  format: FastFormat;
  width: number;
  height: number;
}

/**
 * Whether TensorFlow may decode a file, from its bytes alone: `header` when it may; otherwise why not, and `reason`
 * when the file is bad in a way both decoders must report alike (sharp then reports it).
 */
export type FastPathVerdict = { header: ImageHeader } | { header?: undefined; why: string; reason?: QuarantineReason };

const refuse = (why: string, reason?: QuarantineReason): FastPathVerdict => ({ why, ...(reason ? { reason } : {}) });

/**
 * Pixels the TensorFlow path decodes at most (JPEGs after DCT scaling): it holds a whole image in memory several times
 * over, where libvips streams, so larger images go to sharp.
 */
export const FAST_PATH_MAX_PIXELS = 4 * 1024 * 1024;

/**
 * Reads a file's header, without decoding it, to say whether the TensorFlow path decodes it the way sharp would and
 * within FAST_PATH_MAX_PIXELS when `decodedPixels` says how many pixels decoding takes.
 */
export function fastPathVerdict(bytes: Uint8Array, maxInputPixels: number, decodedPixels: (header: ImageHeader) => number = pixelsOf): FastPathVerdict {
  if (bytes.length === 0) return refuse('zero-byte file', 'empty');
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const verdict = startsWith(data, JPEG) ? jpeg(data) : startsWith(data, PNG) ? png(data) : startsWith(data, GIF87) || startsWith(data, GIF89) ? gif(data) : startsWith(data, BMP) ? bmp(data) : refuse('not a JPEG, PNG, GIF or BMP file');
  if (verdict.header && verdict.header.width * verdict.header.height > maxInputPixels) {
    return refuse(`${verdict.header.width}x${verdict.header.height} pixels: input image exceeds pixel limit of ${maxInputPixels}`, 'too_large');
  }
  if (verdict.header && decodedPixels(verdict.header) > FAST_PATH_MAX_PIXELS) return refuse(`${verdict.header.width}x${verdict.header.height} pixels, too many to decode whole`);
  return verdict;
}

const pixelsOf = ({ width, height }: ImageHeader) => width * height;

const JPEG = [0xff, 0xd8, 0xff];
const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const GIF87 = [...Buffer.from('GIF87a')];
const GIF89 = [...Buffer.from('GIF89a')];
const BMP = [0x42, 0x4d];

const startsWith = (data: Buffer, signature: number[]) => data.length >= signature.length && signature.every((b, i) => data[i] === b);

/** JPEG start-of-frame markers TensorFlow's libjpeg decodes like libvips: baseline, extended and progressive Huffman. */
const FAST_SOF = new Set([0xc0, 0xc1, 0xc2]);
const OTHER_SOF = new Set([0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/**
 * Walks the JPEG markers up to the frame header. Refused: no end-of-image marker at the end (truncated: TensorFlow
 * would decode what is there, sharp refuses it), arithmetic or lossless coding, 12-bit samples, CMYK, an embedded ICC
 * profile (sharp converts it to sRGB) and an EXIF orientation other than 1 (sharp rotates).
 */
function jpeg(data: Buffer): FastPathVerdict {
  if (data.length < 4 || data[data.length - 2] !== 0xff || data[data.length - 1] !== 0xd9) return refuse('premature end of JPEG image: no end-of-image marker', 'truncated');
  let pos = 2;
  while (pos + 4 <= data.length) {
    if (data[pos] !== 0xff) return refuse('JPEG marker expected', 'corrupt');
    const marker = data[pos + 1]!;
    if (marker === 0xff) {
      pos++;
      continue;
    }
    const length = data.readUInt16BE(pos + 2);
    const body = data.subarray(pos + 4, pos + 2 + length);
    if (FAST_SOF.has(marker)) {
      if (body.length < 6) return refuse('JPEG frame header cut short', 'truncated');
      const [precision, components] = [body[0]!, body[5]!];
      if (precision !== 8) return refuse(`${precision}-bit JPEG`);
      if (components !== 1 && components !== 3) return refuse(`JPEG with ${components} components (CMYK)`);
      return { header: { format: 'jpeg', width: body.readUInt16BE(3), height: body.readUInt16BE(1) } };
    }
    if (OTHER_SOF.has(marker)) return refuse('arithmetic-coded or lossless JPEG');
    if (marker === 0xda) return refuse('JPEG scan before its frame header', 'corrupt');
    if (marker === 0xe2 && body.subarray(0, 12).toString('latin1') === 'ICC_PROFILE\0') return refuse('JPEG with an ICC profile');
    if (marker === 0xe1 && body.subarray(0, 6).toString('latin1') === 'Exif\0\0') {
      const orientation = exifOrientation(body.subarray(6));
      if (orientation !== 1) return refuse(`EXIF orientation ${orientation}`);
    }
    pos += 2 + length;
  }
  return refuse('JPEG without a frame header', 'truncated');
}

/** The orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block: 1 when absent, 0 when the block is unreadable. */
function exifOrientation(tiff: Buffer): number {
  if (tiff.length < 8) return 0;
  const little = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return 0;
  const entries = u16(ifd);
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return 0;
    if (u16(entry) === 0x0112) return u16(entry + 8);
  }
  return 1;
}

/**
 * Walks the PNG chunks (headers only). Refused: a chunk running past the end or no IEND (truncated), bit depths other
 * than 8 (16-bit keeps its precision in sharp), an ICC profile (sharp converts it to sRGB) and EXIF data (sharp
 * rotates by its orientation).
 */
function png(data: Buffer): FastPathVerdict {
  if (data.length < 33 || data.toString('latin1', 12, 16) !== 'IHDR') return refuse('PNG header cut short', 'truncated');
  const header: ImageHeader = { format: 'png', width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
  const [bitDepth, colourType] = [data[24]!, data[25]!];
  let pos = 8;
  let ended = false;
  while (pos + 8 <= data.length) {
    const type = data.toString('latin1', pos + 4, pos + 8);
    pos += 12 + data.readUInt32BE(pos);
    if (type === 'iCCP') return refuse('PNG with an ICC profile');
    if (type === 'eXIf') return refuse('PNG with EXIF data');
    if (type === 'IEND') {
      ended = pos <= data.length;
      break;
    }
  }
  if (!ended) return refuse('PNG ends before its IEND chunk', 'truncated');
  if (bitDepth !== 8 && !(colourType === 3 && bitDepth < 8)) return refuse(`${bitDepth}-bit PNG`);
  return { header };
}

/**
 * Walks the GIF's blocks. Refused: transparency (TensorFlow drops it), a first frame smaller than the screen, more
 * than one frame (TensorFlow decodes them all, where only the first is used), no trailer at the end.
 */
function gif(data: Buffer): FastPathVerdict {
  if (data.length < 14 || data[data.length - 1] !== 0x3b) return refuse('GIF ends before its trailer', 'truncated');
  const header: ImageHeader = { format: 'gif', width: data.readUInt16LE(6), height: data.readUInt16LE(8) };
  const colourTable = (flags: number) => (flags & 0x80 ? 3 * 2 ** ((flags & 7) + 1) : 0);
  /** The position after a chain of data sub-blocks starting at `pos`. */
  const afterSubBlocks = (pos: number) => {
    while (pos < data.length && data[pos] !== 0) pos += 1 + data[pos]!;
    return pos + 1;
  };
  let pos = 13 + colourTable(data[10]!);
  let frames = 0;
  while (pos < data.length && data[pos] !== 0x3b) {
    const block = data[pos]!;
    if (block === 0x2c) {
      if (pos + 10 > data.length) return refuse('GIF image descriptor cut short', 'truncated');
      const [left, top, width, height] = [1, 3, 5, 7].map((at) => data.readUInt16LE(pos + at));
      if (frames++ === 0 && (left !== 0 || top !== 0 || width !== header.width || height !== header.height)) return refuse('GIF whose first frame does not fill the screen');
      if (frames > 1) return refuse('animated GIF');
      pos = afterSubBlocks(pos + 10 + colourTable(data[pos + 9]!) + 1);
    } else if (block === 0x21 && pos + 3 < data.length) {
      if (data[pos + 1] === 0xf9 && (data[pos + 3]! & 1) === 1) return refuse('GIF with transparency');
      pos = afterSubBlocks(pos + 2);
    } else return refuse('GIF block of an unknown kind', 'corrupt');
  }
  return frames === 1 ? { header } : refuse('GIF without an image', 'corrupt');
}

/** Uncompressed 24-bit BMP only (sharp reads no BMP at all; TensorFlow reads these exactly). */
function bmp(data: Buffer): FastPathVerdict {
  if (data.length < 34) return refuse('BMP header cut short', 'truncated');
  const [width, height, bitsPerPixel, compression] = [data.readInt32LE(18), data.readInt32LE(22), data.readUInt16LE(28), data.readUInt32LE(30)];
  if (bitsPerPixel !== 24 || compression !== 0 || width <= 0 || height === 0) return refuse(`${bitsPerPixel}-bit or compressed BMP`);
  const rowBytes = Math.ceil((width * 3) / 4) * 4;
  if (data.readUInt32LE(10) + rowBytes * Math.abs(height) > data.length) return refuse('BMP pixel data cut short', 'truncated');
  return { header: { format: 'bmp', width, height: Math.abs(height) } };
}
