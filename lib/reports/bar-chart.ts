import { formatTick, linearAxis, project } from './scale';
import { GRID_COLOR, MUTED_COLOR, PALETTE, TEXT_COLOR, line, rect, svgDocument, text, textWidth, type Chart } from './svg';

export interface BarChartSpec {
  title: string;
  subtitle?: string;
  /** Titles of the category axis and of the value axis, with units. */
  xLabel: string;
  yLabel: string;
  bars: { label: string; value: number }[];
  /** The value axis's extent when it is known (scores from 0 to 1); else from 0 to the largest value. */
  domain?: [number, number];
  /** How values are written above their bars. */
  valueLabel?: (value: number) => string;
  width?: number;
  height?: number;
}

const TICK_SIZE = 12;
const LABEL_SIZE = 13;

/** One vertical bar per category, its value written above it; long category names are slanted to stay legible. */
export function barChart(spec: BarChartSpec): Chart {
  const width = spec.width ?? Math.max(480, Math.min(1200, 120 + spec.bars.length * 56));
  const height = spec.height ?? 400;
  const axis = linearAxis(spec.domain ?? spec.bars.map((bar) => bar.value), { includeZero: true });
  const valueLabel = spec.valueLabel ?? ((value: number) => value.toFixed(2));
  const widestTick = Math.max(...axis.ticks.map((tick) => textWidth(formatTick(axis, tick), TICK_SIZE)));
  const left = 16 + LABEL_SIZE + 12 + widestTick + 8;
  const right = width - 16;
  const slot = (right - left) / Math.max(1, spec.bars.length);
  const widestName = Math.max(0, ...spec.bars.map((bar) => textWidth(bar.label, TICK_SIZE)));
  const slanted = widestName > slot - 4;
  // Slanted names need the height of their 40-degree projection below the axis.
  const namesHeight = slanted ? widestName * Math.sin((40 * Math.PI) / 180) + TICK_SIZE : TICK_SIZE;
  const top = spec.subtitle ? 72 : 56;
  const bottom = height - 20 - LABEL_SIZE - 10 - namesHeight;
  const py = (value: number) => project(axis, value, bottom, top);

  const body: string[] = [text(16, 26, spec.title, { size: 16, weight: 'bold' })];
  if (spec.subtitle) body.push(text(16, 46, spec.subtitle, { size: 12, fill: MUTED_COLOR }));
  for (const tick of axis.ticks) {
    body.push(line(left, py(tick), right, py(tick), GRID_COLOR));
    body.push(text(left - 8, py(tick), formatTick(axis, tick), { size: TICK_SIZE, anchor: 'end', baseline: 'middle', fill: MUTED_COLOR }));
  }
  spec.bars.forEach((bar, index) => {
    const center = left + slot * (index + 0.5);
    const barWidth = Math.min(48, slot * 0.7);
    const y = py(Math.max(axis.min, Math.min(axis.max, bar.value)));
    body.push(rect(center - barWidth / 2, y, barWidth, bottom - y, PALETTE[0]!));
    body.push(text(center, y - 5, valueLabel(bar.value), { size: TICK_SIZE - 1, anchor: 'middle' }));
    body.push(
      slanted
        ? text(center + 4, bottom + 14, bar.label, { size: TICK_SIZE, anchor: 'end', rotate: -40 })
        : text(center, bottom + 8 + TICK_SIZE, bar.label, { size: TICK_SIZE, anchor: 'middle' }),
    );
  });
  body.push(line(left, bottom, right, bottom, TEXT_COLOR));
  body.push(line(left, top, left, bottom, TEXT_COLOR));
  body.push(text((left + right) / 2, height - 14, spec.xLabel, { size: LABEL_SIZE, anchor: 'middle' }));
  body.push(text(16 + LABEL_SIZE / 2, (top + bottom) / 2, spec.yLabel, { size: LABEL_SIZE, anchor: 'middle', rotate: -90, baseline: 'middle' }));
  if (!spec.bars.length) body.push(text((left + right) / 2, (top + bottom) / 2, 'no data', { size: 14, anchor: 'middle', fill: MUTED_COLOR }));
  return svgDocument(width, height, body);
}
