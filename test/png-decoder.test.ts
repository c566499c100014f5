import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { createDeflate } from 'node:zlib';
import sharp from 'sharp';
import { decodeSimplePng } from '../lib/preprocessing/decoders/png';
import { luminance } from '../lib/preprocessing/decoders/target';
import { seededRandom } from '../lib/random';
import { loadNative } from '../lib/tf';
import { formatMatrix } from './helpers/image-formats';
import type { TensorFlowNode } from './helpers/tfjs-node';
import { encodePng, pngChunk, withDamagedImageData, type PngParts } from './helpers/png';

const [WIDTH, HEIGHT] = [37, 23];


/** Noise over a gradient, so every row filter predicts badly somewhere and wraps around 255. */
function samples(count: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  return Uint8Array.from({ length: count }, (_, i) => (((i * 7) % 256) + Math.floor(random() * 120)) & 0xff);
}

const grey = (filters: number[]): PngParts => ({ width: WIDTH, height: HEIGHT, colourType: 0, pixels: samples(WIDTH * HEIGHT, 1), filters });
const rgb = (filters: number[]): PngParts => ({ width: WIDTH, height: HEIGHT, colourType: 2, pixels: samples(WIDTH * HEIGHT * 3, 2), filters });
const PALETTE = samples(3 * 40, 3);
const palette = (filters: number[]): PngParts => ({
  width: WIDTH,
  height: HEIGHT,
  colourType: 3,
  pixels: samples(WIDTH * HEIGHT, 4).map((v) => v % 40),
  palette: PALETTE,
  filters,
});

/** This process's peak resident memory so far (VmHWM). */
function peakRssBytes(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

/** `png` with `chunk` inserted before the `nth` chunk of type `type`. */
function insertBefore(png: Buffer, type: string, chunk: Buffer, nth = 1): Buffer {
  let at = png.indexOf(type);
  for (let n = 1; n < nth; n++) at = png.indexOf(type, at + 4);
  at -= 4;
  return Buffer.concat([png.subarray(0, at), chunk, png.subarray(at)]);
}

/** Every filter alone, then all five cycling row by row. */
const FILTERS = [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4]];

describe('PNG inflation', () => {
  let tf: TensorFlowNode;
  let matrix: Record<string, Buffer>;
  before(async () => {
    tf = loadNative() as TensorFlowNode;
    matrix = await formatMatrix(120, 90);
  });

  /** The pixels TensorFlow's and sharp's decoders give, as bytes, in the PNG's own channels. */
  const referencePixels = async (png: Buffer, channels: 1 | 3) => {
    const decoded = tf.node.decodePng(png, channels);
    const byTensorflow = Buffer.from(Uint8Array.from(decoded.dataSync()));
    decoded.dispose();
    const bySharp = await sharp(png).toColourspace(channels === 1 ? 'b-w' : 'srgb').raw().toBuffer();
    return { byTensorflow, bySharp };
  };

  it('decodes grey, RGB and palette PNGs under every row filter to exactly the pixels of TensorFlow and sharp', async () => {
    for (const [kind, parts, channels] of [['grey', grey, 1], ['rgb', rgb, 3], ['palette', palette, 3]] as const) {
      for (const filters of FILTERS) {
        for (const idatChunks of [1, 3]) {
          const png = encodePng({ ...parts(filters), idatChunks });
          const decoded = decodeSimplePng(png);
          const what = `${kind}, filters ${filters.join(',')}, ${idatChunks} IDAT chunks`;
          assert.ok(decoded, what);
          assert.deepEqual([decoded.width, decoded.height, decoded.channels], [WIDTH, HEIGHT, channels], what);
          const { byTensorflow, bySharp } = await referencePixels(png, channels);
          assert.deepEqual(Buffer.from(decoded.data), byTensorflow, `${what}: TensorFlow`);
          assert.deepEqual(Buffer.from(decoded.data), bySharp, `${what}: sharp`);
        }
      }
    }
  });

  it("decodes sharp's own grey, RGB and palette PNGs exactly", async () => {
    for (const [name, channels] of [['png gray', 1], ['png rgb', 3], ['png palette', 3]] as const) {
      const decoded = decodeSimplePng(matrix[name]!);
      assert.ok(decoded, name);
      const { byTensorflow } = await referencePixels(matrix[name]!, channels);
      assert.deepEqual(Buffer.from(decoded.data), byTensorflow, name);
    }
  });

  it('declines a decompression bomb without inflating it: a 1 GiB stream of rows behind a 37x23 header', async () => {
    const deflate = createDeflate();
    const chunks: Buffer[] = [];
    deflate.on('data', (chunk: Buffer) => chunks.push(chunk));
    const rows = Buffer.alloc(1 << 20);
    for (let i = 0; i < 1024; i++) if (!deflate.write(rows)) await once(deflate, 'drain');
    await new Promise((resolve) => deflate.end(resolve));
    const small = encodePng(grey([0]));
    const idat = small.indexOf('IDAT');
    const bomb = Buffer.concat([small.subarray(0, idat - 4), pngChunk('IDAT', Buffer.concat(chunks)), small.subarray(idat + 8 + small.readUInt32BE(idat - 4))]);
    const peakBefore = peakRssBytes();
    assert.equal(decodeSimplePng(bomb), null);
    assert.ok(peakRssBytes() - peakBefore < 256 * 2 ** 20, `peak RSS grew by ${Math.round((peakRssBytes() - peakBefore) / 2 ** 20)} MiB`);
  });

  it('declines every PNG it would not decode exactly, leaving it to the other decoders', async () => {
    const good = encodePng(rgb([4]));
    const idat = good.indexOf('IDAT');
    const idatLength = good.readUInt32BE(idat - 4);
    const withBadCrc = Buffer.from(good);
    withBadCrc[idat + 4 + idatLength]! ^= 0x01;
    const declined: Record<string, Buffer> = {
      interlaced: matrix['png interlaced']!,
      '16-bit': matrix['png 16-bit']!,
      RGBA: matrix['png rgba']!,
      'grey and alpha': encodePng({ width: 4, height: 4, colourType: 4, pixels: samples(32, 5), filters: [0] }),
      'palette with a transparent entry': encodePng({ ...palette([0]), transparency: Uint8Array.of(0) }),
      'grey with a transparent value': encodePng({ ...grey([0]), transparency: Uint8Array.of(0, 7) }),
      'a bad CRC on its image data': withBadCrc,
      'damaged compressed data': withDamagedImageData(good),
      'more image data than its header has rows': encodePng({ ...rgb([0]), headerHeight: HEIGHT - 1 }),
      'a row filter of type 5': encodePng(rgb([0, 5])),
      'a palette index past its palette': encodePng({ ...palette([0]), palette: PALETTE.subarray(0, 3 * 20) }),
      'no IEND chunk': good.subarray(0, good.length - 12),
      'a cut in its image data': good.subarray(0, idat + 20),
      'no image data': Buffer.concat([good.subarray(0, idat - 4), good.subarray(idat + 8 + idatLength)]),
      'a palette after its image data': insertBefore(encodePng({ ...palette([0]), palette: undefined }), 'IEND', pngChunk('PLTE', PALETTE)),
      'a second palette': insertBefore(encodePng(palette([0])), 'IDAT', pngChunk('PLTE', PALETTE)),
      'a palette of 257 colours': encodePng({ ...palette([0]), palette: samples(3 * 257, 6) }),
      'a chunk whose name is not four letters': insertBefore(good, 'IDAT', pngChunk('1abc', new Uint8Array(3))),
      'a chunk over 8,000,000 bytes': insertBefore(good, 'IDAT', pngChunk('tEXt', Buffer.alloc(8_000_001, 0x41))),
      'image data split by another chunk': insertBefore(encodePng({ ...rgb([0]), idatChunks: 2 }), 'IDAT', pngChunk('tEXt', Buffer.from('Comment\0between')), 2),
      'a palette in a grey image': insertBefore(encodePng(grey([0])), 'IDAT', pngChunk('PLTE', PALETTE)),
      'an unknown critical chunk': insertBefore(good, 'IDAT', pngChunk('ABCD', new Uint8Array(3))),
    };
    for (const [name, png] of Object.entries(declined)) assert.equal(decodeSimplePng(png), null, name);
    const withTextAfterImageData = insertBefore(good, 'IEND', pngChunk('tEXt', Buffer.from('Comment\0after')));
    assert.ok(decodeSimplePng(withTextAfterImageData), 'an ancillary chunk after the image data is fine');
  });
});

describe("sharp's grayscale", () => {
  it('gives exactly the luminance of the sRGB formulas for every RGB colour', () => {
    const linear = (v: number) => (v / 255 <= 0.04045 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4);
    const toLinear = Float64Array.from({ length: 256 }, (_, v) => linear(v));
    const encode = (y: number) => Math.round(255 * (y <= 0.0031308 ? 12.92 * y : 1.055 * y ** (1 / 2.4) - 0.055));
    let wrong = 0;
    for (let r = 0; r < 256; r++) {
      for (let g = 0; g < 256; g++) {
        for (let b = 0; b < 256; b++) {
          if (luminance(r, g, b) !== encode(0.2126 * toLinear[r]! + 0.7152 * toLinear[g]! + 0.0722 * toLinear[b]!)) wrong++;
        }
      }
    }
    assert.equal(wrong, 0);
  });
});
