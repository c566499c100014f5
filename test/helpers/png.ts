import { crc32, deflateSync } from 'node:zlib';

export interface PngParts {
  width: number;
  height: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey and alpha, 6 RGBA. */
  colourType: 0 | 2 | 3 | 4 | 6;
  /** One byte per sample, rows top to bottom (palette: indices). */
  pixels: Uint8Array;
  palette?: Uint8Array;
  /** Transparency chunk (tRNS) contents. */
  transparency?: Uint8Array;
  /** Filter type per row (0 none, 1 sub, 2 up, 3 average, 4 Paeth), cycled over the rows; may hold invalid ones. */
  filters: number[];
  /** Compressed data split over this many IDAT chunks. */
  idatChunks?: number;
  /** Rows of the image the header claims (default `height`). */
  headerHeight?: number;
}

const SAMPLES = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;

/** A chunk: length, type, data and the CRC of type and data. */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const chunk = Buffer.alloc(body.length + 8);
  chunk.writeUInt32BE(data.length, 0);
  body.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(body), body.length + 4);
  return chunk;
}

/** An 8-bit PNG written by hand, so every row filter and chunk layout can be chosen (encoders pick their own). */
export function encodePng(parts: PngParts): Buffer {
  const { width, height, colourType, pixels, filters } = parts;
  const bpp = SAMPLES[colourType];
  const stride = width * bpp;
  const filtered = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const filter = filters[y % filters.length]!;
    filtered[y * (stride + 1)] = filter;
    for (let x = 0; x < stride; x++) {
      const at = y * stride + x;
      const left = x >= bpp ? pixels[at - bpp]! : 0;
      const up = y > 0 ? pixels[at - stride]! : 0;
      const upLeft = x >= bpp && y > 0 ? pixels[at - stride - bpp]! : 0;
      const predicted = [0, left, up, (left + up) >> 1, paethPredictor(left, up, upLeft)][filter] ?? 0;
      filtered[y * (stride + 1) + 1 + x] = (pixels[at]! - predicted) & 0xff;
    }
  }
  const compressed = deflateSync(filtered);
  const pieces = parts.idatChunks ?? 1;
  const size = Math.ceil(compressed.length / pieces);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(parts.headerHeight ?? height, 4);
  header[8] = 8;
  header[9] = colourType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    ...(parts.palette ? [pngChunk('PLTE', parts.palette)] : []),
    ...(parts.transparency ? [pngChunk('tRNS', parts.transparency)] : []),
    ...Array.from({ length: pieces }, (_, i) => pngChunk('IDAT', compressed.subarray(i * size, (i + 1) * size))),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

function paethPredictor(left: number, up: number, upLeft: number): number {
  const p = left + up - upLeft;
  const [pa, pb, pc] = [Math.abs(p - left), Math.abs(p - up), Math.abs(p - upLeft)];
  return pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
}

/** `png` with bytes of its (first) image data overwritten and the chunk's CRC made to match: only inflating finds out. */
export function withDamagedImageData(png: Buffer): Buffer {
  const idat = png.indexOf('IDAT');
  const length = png.readUInt32BE(idat - 4);
  const body = Buffer.from(png.subarray(idat + 4, idat + 4 + length));
  body.fill(0xff, 2, Math.min(length, 12));
  return Buffer.concat([png.subarray(0, idat - 4), pngChunk('IDAT', body), png.subarray(idat + 8 + length)]);
}
