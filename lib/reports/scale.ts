/** Axis domains and tick positions for charts: pure arithmetic, no drawing. */

export interface Axis {
  min: number;
  max: number;
  ticks: number[];
  /** Decimals every tick label needs to tell the ticks apart. */
  decimals: number;
}

export interface AxisOptions {
  /** Counts (epochs, trials, rounds): ticks on whole numbers only, the domain padded by half a step each side. */
  integer?: boolean;
  /** Start the axis at zero (sizes, counts), not at the smallest value. */
  includeZero?: boolean;
  /** Roughly how many ticks (default 5, and 8 for counts). */
  count?: number;
}

/** The 1, 2 or 5 times a power of ten nearest above `raw`. */
export function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

const decimalsOf = (step: number) => Math.max(0, -Math.floor(Math.log10(step) + 1e-9));

/** An axis spanning `values` (non-finite ones ignored) with round ticks; a single value or none still gives a usable axis. */
export function linearAxis(values: number[], options: AxisOptions = {}): Axis {
  const finite = values.filter(Number.isFinite);
  let min = finite.length ? Math.min(...finite) : 0;
  let max = finite.length ? Math.max(...finite) : 1;
  if (options.includeZero) [min, max] = [Math.min(0, min), Math.max(0, max)];
  if (options.integer) {
    const count = options.count ?? 8;
    min = Math.floor(min);
    max = Math.ceil(max);
    const step = Math.max(1, niceStep((max - min || 1) / count));
    const ticks: number[] = [];
    for (let tick = Math.ceil(min / step) * step; tick <= max; tick += step) ticks.push(tick);
    return { min: min - 0.5, max: max + 0.5, ticks, decimals: 0 };
  }
  const count = options.count ?? 5;
  if (min === max) {
    // With includeZero both are 0 here: the axis then runs from 0 up.
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    [min, max] = options.includeZero ? [0, pad] : [min - pad, max + pad];
  }
  const step = niceStep((max - min) / count);
  const decimals = decimalsOf(step);
  const low = Math.floor(min / step + 1e-9) * step;
  const high = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; low + i * step <= high + step / 2; i++) ticks.push(Number((low + i * step).toFixed(decimals)));
  return { min: low, max: high, ticks, decimals };
}

/** Maps `value` on `axis` linearly onto the pixel range from `from` (at axis.min) to `to` (at axis.max). */
export function project(axis: Axis, value: number, from: number, to: number): number {
  return from + ((value - axis.min) / (axis.max - axis.min)) * (to - from);
}

export function formatTick(axis: Axis, value: number): string {
  return value.toFixed(axis.decimals);
}
