import { formatTick, project, type Axis } from './scale';
import { GRID_COLOR, MUTED_COLOR, TEXT_COLOR, circle, line, text, textWidth } from './svg';

export interface LegendEntry {
  name: string;
  color: string;
  /** How the entry is drawn: a line with a marker (series), or a marker alone (groups of points). */
  kind: 'line' | 'point';
  dashed?: boolean;
}

export interface XYFrameSpec {
  title: string;
  subtitle?: string;
  /** Axis titles, with their units: "epoch", "loss (cross-entropy)". */
  xLabel: string;
  yLabel: string;
  x: Axis;
  y: Axis;
  legend: LegendEntry[];
  width: number;
  height: number;
  /** Written after every y tick label: "%". */
  yUnit?: string;
}

export interface XYFrame {
  /** The title, legend, grid, axes, ticks and axis titles, drawn under the data. */
  body: string[];
  px: (x: number) => number;
  py: (y: number) => number;
  plot: { left: number; top: number; right: number; bottom: number };
}

const TITLE_SIZE = 16;
const LABEL_SIZE = 13;
const TICK_SIZE = 12;
const LEGEND_SIZE = 12;
const LEGEND_SWATCH = 22;
const INSET = 10;

/** Lays out a chart with x and y axes: the plot area is what the titles, tick labels and legend leave free. */
export function xyFrame(spec: XYFrameSpec): XYFrame {
  const yTick = (value: number) => `${formatTick(spec.y, value)}${spec.yUnit ?? ''}`;
  const body: string[] = [];
  body.push(text(16, 26, spec.title, { size: TITLE_SIZE, weight: 'bold' }));
  let headerBottom = 34;
  if (spec.subtitle) {
    body.push(text(16, 46, spec.subtitle, { size: LEGEND_SIZE, fill: MUTED_COLOR }));
    headerBottom = 54;
  }
  // The legend sits in a row under the title, so it never covers data.
  if (spec.legend.length) {
    headerBottom = legendRow(body, spec.legend, 16, headerBottom + 12, spec.width - 16) + 8;
  }

  const widestTick = Math.max(...spec.y.ticks.map((tick) => textWidth(yTick(tick), TICK_SIZE)), 0);
  const plot = { left: 16 + LABEL_SIZE + 12 + widestTick + 8, top: headerBottom + 8, right: spec.width - 24, bottom: spec.height - 20 - LABEL_SIZE - TICK_SIZE - 14 };
  // Inset from the frame, so a point at the end of an axis is not drawn on the axis line.
  const xInset = spec.x.ticks.includes(spec.x.min) ? INSET : 0;
  const px = (x: number) => project(spec.x, x, plot.left + xInset, plot.right - xInset);
  const py = (y: number) => project(spec.y, y, plot.bottom - INSET, plot.top + INSET);

  for (const tick of spec.y.ticks) {
    body.push(line(plot.left, py(tick), plot.right, py(tick), GRID_COLOR));
    body.push(text(plot.left - 8, py(tick), yTick(tick), { size: TICK_SIZE, anchor: 'end', baseline: 'middle', fill: MUTED_COLOR }));
  }
  for (const tick of spec.x.ticks) {
    body.push(line(px(tick), plot.bottom, px(tick), plot.bottom + 5, TEXT_COLOR));
    body.push(text(px(tick), plot.bottom + 8 + TICK_SIZE, formatTick(spec.x, tick), { size: TICK_SIZE, anchor: 'middle', fill: MUTED_COLOR }));
  }
  body.push(line(plot.left, plot.bottom, plot.right, plot.bottom, TEXT_COLOR));
  body.push(line(plot.left, plot.top, plot.left, plot.bottom, TEXT_COLOR));
  body.push(text((plot.left + plot.right) / 2, spec.height - 14, spec.xLabel, { size: LABEL_SIZE, anchor: 'middle' }));
  body.push(text(16 + LABEL_SIZE / 2, (plot.top + plot.bottom) / 2, spec.yLabel, { size: LABEL_SIZE, anchor: 'middle', rotate: -90, baseline: 'middle' }));
  return { body, px, py, plot };
}

/** Draws the legend entries left to right from (x, y), wrapping at `maxX`; returns the y of the last row's bottom. */
function legendRow(body: string[], entries: LegendEntry[], x: number, y: number, maxX: number): number {
  let cursor = x;
  let row = y;
  for (const entry of entries) {
    const width = LEGEND_SWATCH + 6 + textWidth(entry.name, LEGEND_SIZE) + 18;
    if (cursor > x && cursor + width > maxX) {
      cursor = x;
      row += LEGEND_SIZE + 8;
    }
    if (entry.kind === 'line') body.push(line(cursor, row, cursor + LEGEND_SWATCH, row, entry.color, 2.5, entry.dashed ? '6 4' : undefined));
    body.push(circle(cursor + LEGEND_SWATCH / 2, row, 4, entry.color));
    body.push(text(cursor + LEGEND_SWATCH + 6, row, entry.name, { size: LEGEND_SIZE, baseline: 'middle' }));
    cursor += width;
  }
  return row + LEGEND_SIZE / 2;
}
