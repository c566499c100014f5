/** SVG building blocks shared by the charts: text, escaping, colours, the document. */

/** A chart as SVG source with its size in pixels: the PNG rendered from it has exactly this size. */
export interface Chart {
  svg: string;
  width: number;
  height: number;
}

/** DejaVu Sans is what Debian's fontconfig resolves `sans-serif` to; the layout measures text in its proportions. */
export const FONT_FAMILY = 'DejaVu Sans, Verdana, sans-serif';
export const TEXT_COLOR = '#222';
export const MUTED_COLOR = '#666';
export const GRID_COLOR = '#e3e3e3';
/** Colour-blind-safe categorical colours (Okabe-Ito), in the order series take them. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Width of `content` at `size` px: DejaVu Sans glyphs average about 0.62 em (digits 0.64). A slight overestimate on purpose. */
export function textWidth(content: string, size: number): number {
  return content.length * size * 0.64;
}

export interface TextStyle {
  size?: number;
  anchor?: 'start' | 'middle' | 'end';
  weight?: 'normal' | 'bold';
  fill?: string;
  /** Degrees, about (x, y). */
  rotate?: number;
  /** Vertical alignment of the text around y. */
  baseline?: 'alphabetic' | 'middle' | 'hanging';
}

export function text(x: number, y: number, content: string, style: TextStyle = {}): string {
  const attributes = [
    `x="${round(x)}"`,
    `y="${round(y)}"`,
    `font-size="${style.size ?? 12}"`,
    `text-anchor="${style.anchor ?? 'start'}"`,
    `fill="${style.fill ?? TEXT_COLOR}"`,
  ];
  if (style.weight === 'bold') attributes.push('font-weight="bold"');
  if (style.baseline && style.baseline !== 'alphabetic') attributes.push(`dominant-baseline="${style.baseline === 'middle' ? 'central' : 'hanging'}"`);
  if (style.rotate) attributes.push(`transform="rotate(${style.rotate} ${round(x)} ${round(y)})"`);
  return `<text ${attributes.join(' ')}>${escapeXml(content)}</text>`;
}

export function line(x1: number, y1: number, x2: number, y2: number, stroke: string, width = 1, dash?: string): string {
  const dashed = dash ? ` stroke-dasharray="${dash}"` : '';
  return `<line x1="${round(x1)}" y1="${round(y1)}" x2="${round(x2)}" y2="${round(y2)}" stroke="${stroke}" stroke-width="${width}"${dashed}/>`;
}

export function rect(x: number, y: number, width: number, height: number, fill: string, stroke?: string): string {
  const outline = stroke ? ` stroke="${stroke}"` : '';
  return `<rect x="${round(x)}" y="${round(y)}" width="${round(width)}" height="${round(height)}" fill="${fill}"${outline}/>`;
}

export function circle(x: number, y: number, r: number, fill: string, stroke = 'white'): string {
  return `<circle cx="${round(x)}" cy="${round(y)}" r="${r}" fill="${fill}" stroke="${stroke}" stroke-width="1.5"/>`;
}

/** A whole SVG document on a white background. */
export function svgDocument(width: number, height: number, body: string[]): Chart {
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}">`,
    rect(0, 0, width, height, 'white'),
    ...body,
    '</svg>',
  ].join('\n');
  return { svg, width, height };
}

export const round = (value: number) => Math.round(value * 10) / 10;
