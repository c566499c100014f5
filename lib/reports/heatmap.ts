import { MUTED_COLOR, TEXT_COLOR, svgDocument, text, textWidth, type Chart } from './svg';

/** ColorBrewer's sequential "Blues", lightest first: a count of zero is nearly white, the largest count darkest. */
const BLUES = ['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'];

/** The colour of a share `t` of the largest count (0 to 1), interpolated between the scale's stops. */
export function heatColor(t: number): string {
  const position = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (BLUES.length - 1);
  const low = Math.floor(position);
  const high = Math.min(BLUES.length - 1, low + 1);
  const mix = position - low;
  const channel = (hex: string, i: number) => parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16);
  const rgb = [0, 1, 2].map((i) => Math.round(channel(BLUES[low]!, i) * (1 - mix) + channel(BLUES[high]!, i) * mix));
  return `#${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}

export interface HeatmapSpec {
  title: string;
  subtitle?: string;
  /** Names of the rows and the columns, in order. */
  rowNames: string[];
  columnNames: string[];
  rowLabel: string;
  columnLabel: string;
  /** `values[row][column]`, non-negative counts. */
  values: number[][];
  /** What the colour bar measures, with its unit. */
  valueLabel: string;
}

const NAME_SIZE = 12;

/** A grid of cells coloured by their count, each count written in its cell when it fits, with a colour bar. */
export function heatmap(spec: HeatmapSpec): Chart {
  const rows = spec.rowNames.length;
  const columns = spec.columnNames.length;
  const largest = Math.max(0, ...spec.values.flat());
  const cell = Math.max(14, Math.min(56, Math.floor(520 / Math.max(rows, columns, 1))));
  const widestCount = textWidth(String(largest), 11);
  const countsFit = widestCount + 4 <= cell;
  const rowNamesWidth = Math.max(0, ...spec.rowNames.map((name) => textWidth(name, NAME_SIZE)));
  const columnNamesWidth = Math.max(0, ...spec.columnNames.map((name) => textWidth(name, NAME_SIZE)));
  const slanted = columnNamesWidth > cell - 4;
  const namesHeight = slanted ? columnNamesWidth * Math.sin((45 * Math.PI) / 180) + NAME_SIZE : NAME_SIZE + 4;

  const left = 16 + 13 + 12 + rowNamesWidth + 10;
  const top = spec.subtitle ? 72 : 56;
  const gridWidth = cell * columns;
  const gridHeight = cell * rows;
  const barX = left + gridWidth + 28;
  const width = Math.max(barX + 16 + 12 + textWidth(String(largest), 12) + 40, 16 + textWidth(spec.title, 16) + 16, 16 + textWidth(spec.subtitle ?? '', 12) + 16, left + textWidth(spec.columnLabel, 13) + 16);
  const height = top + gridHeight + 10 + namesHeight + 34;

  const body: string[] = [text(16, 26, spec.title, { size: 16, weight: 'bold' })];
  if (spec.subtitle) body.push(text(16, 46, spec.subtitle, { size: 12, fill: MUTED_COLOR }));
  spec.values.forEach((row, r) =>
    row.forEach((value, c) => {
      const share = largest ? value / largest : 0;
      const x = left + c * cell;
      const y = top + r * cell;
      body.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${heatColor(share)}" stroke="white" data-count="${value}"/>`);
      if (countsFit) body.push(text(x + cell / 2, y + cell / 2, String(value), { size: 11, anchor: 'middle', baseline: 'middle', fill: share > 0.5 ? 'white' : TEXT_COLOR }));
    }),
  );
  spec.rowNames.forEach((name, r) => body.push(text(left - 8, top + (r + 0.5) * cell, name, { size: NAME_SIZE, anchor: 'end', baseline: 'middle' })));
  spec.columnNames.forEach((name, c) => {
    const x = left + (c + 0.5) * cell;
    body.push(
      slanted
        ? text(x + 4, top + gridHeight + 12, name, { size: NAME_SIZE, anchor: 'end', rotate: -45 })
        : text(x, top + gridHeight + 8 + NAME_SIZE, name, { size: NAME_SIZE, anchor: 'middle' }),
    );
  });
  body.push(text(left + gridWidth / 2, height - 14, spec.columnLabel, { size: 13, anchor: 'middle' }));
  body.push(text(16 + 13 / 2, top + gridHeight / 2, spec.rowLabel, { size: 13, anchor: 'middle', rotate: -90, baseline: 'middle' }));

  // The colour bar: the largest count at the top, zero at the bottom.
  const gradient = BLUES.map((color, i) => `<stop offset="${(i / (BLUES.length - 1)).toFixed(3)}" stop-color="${color}"/>`).join('');
  body.push(`<defs><linearGradient id="scale" x1="0" y1="1" x2="0" y2="0">${gradient}</linearGradient></defs>`);
  body.push(`<rect x="${barX}" y="${top}" width="16" height="${gridHeight}" fill="url(#scale)" stroke="${MUTED_COLOR}" stroke-width="0.5"/>`);
  body.push(text(barX + 22, top + 6, String(largest), { size: 12, baseline: 'middle', fill: MUTED_COLOR }));
  body.push(text(barX + 22, top + gridHeight - 6, '0', { size: 12, baseline: 'middle', fill: MUTED_COLOR }));
  body.push(text(barX + 8, top + gridHeight + 18, spec.valueLabel, { size: 12, anchor: 'middle', fill: MUTED_COLOR }));
  if (!rows) body.push(text(left, top + 20, 'no data', { size: 14, fill: MUTED_COLOR }));
  return svgDocument(Math.ceil(width), Math.ceil(height), body);
}
