import { seededRandom } from './random';
import { SWEEP_METRICS, type SweepMetric } from './schemas/hyperparameter-sweep';
import type { EpochRecord } from './training/checkpoint';

/** A search space: dotted paths into a trial's input (`training.learningRate`) and the values to try. */
export type SearchSpace = Record<string, unknown[]>;
export type Assignment = Record<string, unknown>;

/** What became of one trial: a row of the sweep's trial table. */
export interface TrialOutcome {
  /** 1-based trial number. */
  trial: number;
  workflowId: string;
  assignment: Assignment;
  status: 'completed' | 'failed';
  /** The metric at `bestEpoch` (completed trials). */
  score?: number;
  /** The epoch whose weights the trial returned. */
  bestEpoch?: number;
  /** Epochs trained. */
  epochs?: number;
  modelUri?: string;
  testAccuracy?: number;
  error?: string;
  /** ASHA: the highest rung the trial reached (0-based) and the checkpoint it could continue from. */
  rung?: number;
  checkpointUri?: string;
  /** ASHA: the trial ended before `maxEpochs`, left at its rung (or by its own early stopping). */
  stoppedEarly?: boolean;
}

/** Number of combinations in the grid (may exceed what a double counts exactly; it is only compared with ceilings). */
export function gridSize(space: SearchSpace): number {
  return Object.values(space).reduce((size, values) => size * values.length, 1);
}

/**
 * The grid's combination at `index` (0-based), decoded as a mixed-radix number whose last key varies fastest.
 * Nothing but that one combination is built, so any index of a 10^12-point grid costs the same.
 */
export function gridAssignment(space: SearchSpace, index: number): Assignment {
  const entries = Object.entries(space);
  const assignment: Assignment = {};
  let rest = index;
  for (let k = entries.length - 1; k >= 0; k--) {
    const [path, values] = entries[k]!;
    assignment[path] = values[rest % values.length];
    rest = Math.floor(rest / values.length);
  }
  // Keys in the space's order, whatever order they were decoded in.
  return Object.fromEntries(entries.map(([path]) => [path, assignment[path]]));
}

/** Folds a non-negative integer of up to 53 bits into 32 bits. */
function fold32(n: number): number {
  return (n ^ Math.floor(n / 2 ** 32)) >>> 0;
}

/** murmur3's finalizer: nearby inputs give unrelated outputs. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Random search's trial `index`: each key's value drawn uniformly with a generator seeded by (seed, index) alone,
 * so a trial's assignment does not depend on which trials ran before it or in which run of the workflow.
 */
export function randomAssignment(space: SearchSpace, seed: number, index: number): Assignment {
  const random = seededRandom(mix32((mix32(fold32(seed)) + fold32(index)) >>> 0));
  return Object.fromEntries(Object.entries(space).map(([path, values]) => [path, values[Math.floor(random() * values.length)]]));
}

/** A deep copy of `base` with each dotted path of the assignment set to its value. */
export function applyAssignment<T extends object>(base: T, assignment: Assignment): T {
  // JSON, not structuredClone: this runs in the workflow sandbox, and inputs are JSON anyway.
  const result = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  for (const [path, value] of Object.entries(assignment)) {
    const keys = path.split('.');
    let node = result;
    for (const key of keys.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[keys.at(-1)!] = value;
  }
  return result as T;
}

/** A trial's score: the metric at the epoch whose weights training returned (the best one under early stopping). */
export function trialScore(metric: SweepMetric, bestEpoch: EpochRecord): number {
  return bestEpoch[metric] ?? NaN;
}

/**
 * `ranked` (best first) with `trial` ranked in, in place of an earlier outcome of the same trial, keeping at most
 * `limit`; ties go to the earlier trial. Trials without a finite score are left out.
 */
export function rankTrial<T extends { trial: number; score?: number }>(ranked: T[], trial: T, metric: SweepMetric, limit: number): T[] {
  if (!Number.isFinite(trial.score)) return ranked;
  const sign = SWEEP_METRICS[metric] === 'max' ? -1 : 1;
  const others = ranked.filter((t) => t.trial !== trial.trial);
  return [...others, trial].sort((a, b) => sign * (a.score! - b.score!) || a.trial - b.trial).slice(0, limit);
}

/** Trials a random search runs when the input does not say. */
const DEFAULT_RANDOM_TRIALS = 10;

export type Sampling = 'grid' | 'random';

/** How a sweep draws its trial points: as its search says, or for ASHA as `asha.sampling` says. */
export function samplingOf(config: { search: Sampling | 'asha'; asha?: { sampling: Sampling } }): Sampling {
  return config.search === 'asha' ? (config.asha?.sampling ?? 'grid') : config.search;
}

/** Trials a sweep runs: random search `trials`; grid search every combination, or only the first `trials`. */
export function plannedTrials(search: Sampling, space: SearchSpace, trials: number | undefined): number {
  if (search === 'random') return trials ?? DEFAULT_RANDOM_TRIALS;
  return Math.min(trials ?? Infinity, gridSize(space));
}

/** Trial `index`'s assignment, computed on its own: no list of assignments is ever built. */
export function trialAssignment(search: Sampling, space: SearchSpace, seed: number, index: number): Assignment {
  return search === 'grid' ? gridAssignment(space, index) : randomAssignment(space, seed, index);
}
