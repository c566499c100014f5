/** Activation ranges from the values a tensor took on calibration images: exact min-max, or a central percentile. */

export interface Range {
  min: number;
  max: number;
}

export type CalibrationMethod = 'minmax' | 'percentile';

/** Enough bins that a percentile bound lies within 1/2048 of the tensor's full range of its exact value. */
export const HISTOGRAM_BINS = 2048;

/** Running min and max of every value seen. */
export class MinMaxCollector {
  min = Infinity;
  max = -Infinity;

  add(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
    }
  }

  range(): Range {
    return { min: this.min, max: this.max };
  }
}

/**
 * A histogram over a known full range (the min-max of a first pass over the same images), from which the bounds
 * that keep `percentile`% of the values inside, cutting the same share from each tail, are read.
 */
export class PercentileCollector {
  private readonly counts = new Float64Array(HISTOGRAM_BINS);
  private total = 0;

  constructor(private readonly full: Range) {}

  add(values: ArrayLike<number>): void {
    const { min, max } = this.full;
    const width = (max - min) / HISTOGRAM_BINS;
    for (let i = 0; i < values.length; i++) {
      const bin = width > 0 ? Math.floor((values[i]! - min) / width) : 0;
      this.counts[Math.max(0, Math.min(HISTOGRAM_BINS - 1, bin))]!++;
    }
    this.total += values.length;
  }

  range(percentile: number): Range {
    const { min, max } = this.full;
    const width = (max - min) / HISTOGRAM_BINS;
    const tail = (this.total * (100 - percentile)) / 200;
    let below = 0;
    let low = 0;
    while (low < HISTOGRAM_BINS - 1 && below + this.counts[low]! <= tail) below += this.counts[low++]!;
    let above = 0;
    let high = HISTOGRAM_BINS - 1;
    while (high > low && above + this.counts[high]! <= tail) above += this.counts[high--]!;
    return { min: min + low * width, max: min + (high + 1) * width };
  }
}
