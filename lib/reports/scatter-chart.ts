import { linearAxis } from './scale';
import { MUTED_COLOR, PALETTE, TEXT_COLOR, circle, line, svgDocument, text, textWidth, type Chart } from './svg';
import { xyFrame } from './xy-frame';

export interface LabelledPoint {
  x: number;
  y: number;
  /** Drawn beside the point, moved where it would cover another label. */
  label?: string;
  /** The legend entry (and colour) the point belongs to. */
  group: string;
  /** Ringed, and its label bold: the chosen variant, the best trial. */
  highlight?: boolean;
}

export interface ScatterChartSpec {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  points: LabelledPoint[];
  /** Legend order; groups with no point are left out. */
  groups: string[];
  /** Colour of each group, by default the palette in `groups` order. */
  colors?: Record<string, string>;
  /** A dashed horizontal line across the plot, labelled at its right end (a threshold). */
  reference?: { y: number; label: string };
  xInteger?: boolean;
  xIncludeZero?: boolean;
  /** Written after every y tick label: "%". */
  yUnit?: string;
  width?: number;
  height?: number;
}

const LABEL_SIZE = 12;
const MARKER = 5;
const RING = MARKER + 4;

interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

const overlaps = (a: Box, b: Box) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

/** Points coloured by group, each with its label where it covers neither another label nor a point. */
export function scatterChart(spec: ScatterChartSpec): Chart {
  const width = spec.width ?? 720;
  const height = spec.height ?? 420;
  const points = spec.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const groups = spec.groups.filter((group) => points.some((p) => p.group === group));
  const colorOf = (group: string) => spec.colors?.[group] ?? PALETTE[spec.groups.indexOf(group) % PALETTE.length]!;
  const frame = xyFrame({
    ...spec,
    width,
    height,
    x: linearAxis(points.map((p) => p.x), { integer: spec.xInteger, includeZero: spec.xIncludeZero }),
    y: linearAxis([...points.map((p) => p.y), ...(spec.reference ? [spec.reference.y] : [])]),
    legend: groups.map((group) => ({ name: group, color: colorOf(group), kind: 'point' })),
  });
  const body = [...frame.body];
  const placed: Box[] = points.map((p) => {
    const [x, y] = [frame.px(p.x), frame.py(p.y)];
    const r = p.highlight ? RING : MARKER;
    return { left: x - r, top: y - r, right: x + r, bottom: y + r };
  });
  if (spec.reference && points.length) {
    const { plot } = frame;
    const y = frame.py(spec.reference.y);
    const labelWidth = textWidth(spec.reference.label, LABEL_SIZE - 1);
    body.push(line(plot.left, y, plot.right, y, MUTED_COLOR, 1.5, '6 4'));
    body.push(text(plot.right - 4, y + 4, spec.reference.label, { size: LABEL_SIZE - 1, anchor: 'end', baseline: 'hanging', fill: MUTED_COLOR }));
    placed.push({ left: plot.right - 4 - labelWidth, top: y, right: plot.right, bottom: y + LABEL_SIZE + 6 });
  }
  for (const p of points) {
    const [x, y] = [frame.px(p.x), frame.py(p.y)];
    if (p.highlight) body.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${RING}" fill="none" stroke="${TEXT_COLOR}" stroke-width="1.5"/>`);
    body.push(circle(x, y, MARKER, colorOf(p.group)));
  }
  for (const p of points) {
    if (!p.label) continue;
    const [x, y] = [frame.px(p.x), frame.py(p.y)];
    const box = labelBox(p.label, x, y, frame.plot, placed);
    if (!box) continue;
    placed.push(box);
    body.push(text(box.left, (box.top + box.bottom) / 2, p.label, { size: LABEL_SIZE, baseline: 'middle', weight: p.highlight ? 'bold' : 'normal' }));
  }
  if (!points.length) {
    const { plot } = frame;
    body.push(text((plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2, 'no data', { size: 14, anchor: 'middle', fill: MUTED_COLOR }));
  }
  return svgDocument(width, height, body);
}

/** The first spot around (x, y) where the label stays in the plot and covers nothing placed; none when every spot is taken. */
function labelBox(label: string, x: number, y: number, plot: Box, placed: Box[]): Box | undefined {
  const w = textWidth(label, LABEL_SIZE);
  const h = LABEL_SIZE + 2;
  const gap = MARKER + 4;
  const spots = [
    [x + gap, y - h / 2],
    [x - gap - w, y - h / 2],
    [x - w / 2, y - gap - h],
    [x - w / 2, y + gap],
    [x + gap, y - gap - h],
    [x + gap, y + gap],
    [x - gap - w, y - gap - h],
    [x - gap - w, y + gap],
  ] as const;
  for (const [left, top] of spots) {
    const box = { left, top, right: left + w, bottom: top + h };
    const inside = box.left >= plot.left + 2 && box.right <= plot.right + 20 && box.top >= plot.top - 6 && box.bottom <= plot.bottom;
    if (inside && !placed.some((other) => overlaps(box, other))) return box;
  }
  return undefined;
}
