import { linearAxis } from './scale';
import { MUTED_COLOR, PALETTE, circle, svgDocument, text, type Chart } from './svg';
import { xyFrame } from './xy-frame';

export interface Point {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  points: Point[];
  dashed?: boolean;
}

export interface LineChartSpec {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** The x values count something (epochs, rounds). */
  xInteger?: boolean;
  xIncludeZero?: boolean;
  yIncludeZero?: boolean;
  /** Written after every y tick label: "%". */
  yUnit?: string;
  width?: number;
  height?: number;
}

/** Lines with a marker at every point (a single point still shows); non-finite points are left out, series without points too. */
export function lineChart(spec: LineChartSpec): Chart {
  const width = spec.width ?? 720;
  const height = spec.height ?? 400;
  const series = spec.series
    .map((s, index) => ({ ...s, color: PALETTE[index % PALETTE.length]!, points: s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)) }))
    .filter((s) => s.points.length > 0);
  const points = series.flatMap((s) => s.points);
  const frame = xyFrame({
    ...spec,
    width,
    height,
    x: linearAxis(points.map((p) => p.x), { integer: spec.xInteger, includeZero: spec.xIncludeZero }),
    y: linearAxis(points.map((p) => p.y), { includeZero: spec.yIncludeZero }),
    legend: series.map((s) => ({ name: s.name, color: s.color, kind: 'line', dashed: s.dashed })),
  });
  const body = [...frame.body];
  for (const s of series) {
    const path = s.points.map((p, i) => `${i ? 'L' : 'M'}${frame.px(p.x).toFixed(1)},${frame.py(p.y).toFixed(1)}`).join(' ');
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    body.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2.5"${dash}/>`);
    for (const p of s.points) body.push(circle(frame.px(p.x), frame.py(p.y), 4, s.color));
  }
  if (!points.length) {
    const { plot } = frame;
    body.push(text((plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2, 'no data', { size: 14, anchor: 'middle', fill: MUTED_COLOR }));
  }
  return svgDocument(width, height, body);
}
