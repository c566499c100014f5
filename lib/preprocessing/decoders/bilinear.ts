import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The kernels of bilinear.wat, assembled by `npm run build` into dist/ beside this file. */
interface Kernels {
  memory: WebAssembly.Memory;
  horizontal(src: number, rowBytes: number, rows: number, groups: number, table: number, out: number, outStride: number): void;
  vertical(rows: number, table: number, count: number, out: number, outRow: number): void;
}

/** A tap of one axis: the two source pixels an output pixel blends, and the second one's weight (of ONE). */
interface Tap {
  a: number;
  b: number;
  weight: number;
}

/** Fixed-point 1 of the weights (8 bits: a horizontal value a * (ONE - w) + b * w still fits 16 bits). */
const ONE = 256;
/** Output values per group of `horizontal`, its window of source bytes, and the bytes of a group's table entry. */
const LANES = 8;
const WINDOW = 32;
const GROUP_ENTRY = 112;
const ROW_ENTRY = 16;

/** Where one geometry's tables and buffers lie in the kernels' memory. */
interface Layout {
  key: string;
  rowBytes: number;
  outRow: number;
  groups: number;
  groupTable: number;
  rowTable: number;
  src: number;
  rows: number;
  dst: number;
}

/**
 * Bilinear resizing of uint8 images with half-pixel centres (TensorFlow's `ResizeBilinear` with `half_pixel_centers`,
 * libvips' bilinear), in WebAssembly SIMD: a third of the CPU time of TensorFlow's op alone, which also computes in
 * float32 and needs a rounding and a cast after it. Weights are 8-bit fixed point, so a value may differ from
 * TensorFlow's by one (and exact halves round up, where TensorFlow rounds them to even). Any upscale, any downscale of
 * the height, and downscales of the width up to 2x (larger ones may not fit a group's window, and throw). One instance
 * per thread.
 */
export class BilinearResizer {
  private layout: Layout | undefined;

  private constructor(private readonly kernels: Kernels) {}

  static load(): BilinearResizer {
    const module = new WebAssembly.Module(readFileSync(join(__dirname, 'bilinear.wasm')));
    return new BilinearResizer(new WebAssembly.Instance(module, {}).exports as unknown as Kernels);
  }

  /**
   * `pixels` (height x width x channels, row-major) resized to toHeight x toWidth. The result is a view of the
   * kernels' memory, valid until the next call: copy it out before then.
   */
  resize(pixels: Uint8Array, height: number, width: number, channels: number, toHeight: number, toWidth: number): Uint8Array {
    if (pixels.length !== height * width * channels) throw new Error(`${pixels.length} bytes are not a ${width}x${height}x${channels} image`);
    const layout = this.layoutFor(height, width, channels, toHeight, toWidth);
    const { memory, horizontal, vertical } = this.kernels;
    new Uint8Array(memory.buffer).set(pixels, layout.src);
    horizontal(layout.src, layout.rowBytes, height, layout.groups, layout.groupTable, layout.rows, layout.groups * 16);
    vertical(layout.rows, layout.rowTable, toHeight, layout.dst, layout.outRow);
    return new Uint8Array(memory.buffer, layout.dst, toHeight * layout.outRow);
  }

  /** The last geometry's layout, or a new one (images of a dataset mostly share a size). */
  private layoutFor(height: number, width: number, channels: number, toHeight: number, toWidth: number): Layout {
    const key = `${height} ${width} ${channels} ${toHeight} ${toWidth}`;
    if (this.layout?.key === key) return this.layout;
    const rowBytes = width * channels;
    const outRow = toWidth * channels;
    // Whole groups of sixteen values: `vertical` reads sixteen at a time.
    const groups = Math.ceil(outRow / 16) * 2;
    let end = 0;
    const reserve = (bytes: number) => {
      const at = end;
      end = Math.ceil((end + bytes) / 16) * 16;
      return at;
    };
    const layout: Layout = {
      key,
      rowBytes,
      outRow,
      groups,
      groupTable: reserve(groups * GROUP_ENTRY),
      rowTable: reserve(toHeight * ROW_ENTRY),
      // A group's window may reach past the last row.
      src: reserve(height * rowBytes + WINDOW),
      rows: reserve(height * groups * 16),
      // A row's last store may run past its end.
      dst: reserve(toHeight * outRow + 16),
    };
    const { memory } = this.kernels;
    if (end > memory.buffer.byteLength) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
    // The tables overwrite the last layout's: should writing them throw, no layout is left to reuse.
    this.layout = undefined;
    this.writeGroupTable(layout, taps(width, toWidth), channels);
    this.writeRowTable(layout, taps(height, toHeight));
    this.layout = layout;
    return layout;
  }

  private writeGroupTable({ groupTable, groups, outRow }: Layout, columns: Tap[], channels: number): void {
    const bytes = new Uint8Array(this.kernels.memory.buffer, groupTable, groups * GROUP_ENTRY);
    const view = new DataView(bytes.buffer, groupTable, bytes.length);
    for (let g = 0; g < groups; g++) {
      const entry = g * GROUP_ENTRY;
      // Lanes past the row's end repeat its last value; their results are never read.
      const lanes = Array.from({ length: LANES }, (_, lane) => {
        const k = Math.min(g * LANES + lane, outRow - 1);
        const { a, b, weight } = columns[Math.floor(k / channels)]!;
        const channel = k % channels;
        return { a: a * channels + channel, b: b * channels + channel, weight };
      });
      // Upscaling, a lane's pixel may start before the previous lane's channel.
      const window = Math.min(...lanes.map(({ a }) => a));
      view.setInt32(entry, window, true);
      lanes.forEach(({ a, b, weight }, lane) => {
        if (b - window >= WINDOW) throw new Error(`a downscale of ${columns.length} columns this large is out of the resizer's reach`);
        for (const [offset, masks] of [[a - window, 16], [b - window, 48]] as const) {
          bytes[entry + masks + 2 * lane] = offset < 16 ? offset : 255;
          bytes[entry + masks + 2 * lane + 1] = 255;
          bytes[entry + masks + 16 + 2 * lane] = offset >= 16 ? offset - 16 : 255;
          bytes[entry + masks + 16 + 2 * lane + 1] = 255;
        }
        view.setInt16(entry + 80 + 2 * lane, ONE - weight, true);
        view.setInt16(entry + 96 + 2 * lane, weight, true);
      });
    }
  }

  private writeRowTable({ rowTable, groups }: Layout, rows: Tap[]): void {
    const view = new DataView(this.kernels.memory.buffer, rowTable, rows.length * ROW_ENTRY);
    rows.forEach(({ a, b, weight }, y) => {
      view.setInt32(y * ROW_ENTRY, a * groups * 16, true);
      view.setInt32(y * ROW_ENTRY + 4, b * groups * 16, true);
      view.setInt32(y * ROW_ENTRY + 8, weight, true);
    });
  }
}

/** Half-pixel centres: output pixel o samples source position (o + 0.5) * from / to - 0.5, clamped to the edges. */
function taps(from: number, to: number): Tap[] {
  const scale = from / to;
  return Array.from({ length: to }, (_, o) => {
    const position = (o + 0.5) * scale - 0.5;
    let left = Math.floor(position);
    let weight = Math.round((position - left) * ONE);
    if (weight === ONE) [left, weight] = [left + 1, 0];
    const clamp = (x: number) => Math.min(Math.max(x, 0), from - 1);
    const [a, b] = [clamp(left), clamp(left + 1)];
    return { a, b, weight: a === b ? 0 : weight };
  });
}
