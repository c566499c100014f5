import sharp from 'sharp';
import { withSharp } from '../sharp-gate';
import type { Chart } from './svg';

/** Renders a chart's SVG to PNG at its own size, with sharp (librsvg on libvips' thread pool, off the event loop). */
export function renderPng(chart: Chart): Promise<Buffer> {
  return withSharp(() => sharp(Buffer.from(chart.svg)).png({ compressionLevel: 9 }).toBuffer());
}
