/**
 * Asynchronous successive halving (ASHA; Li et al. 2018, "A System for Massively Parallel Hyperparameter Tuning"):
 * every trial trains to the first rung's epoch budget; a trial is promoted to the next rung, continuing its training,
 * as soon as it is among the top 1/eta of the trials that have reported at its rung so far. Nothing waits for a rung
 * to fill: a free slot takes the promotion of the highest rung that has one, else starts a new trial.
 * Pure state and decisions, no Temporal: the sweep workflow drives it and carries the state across runs.
 */

export interface AshaSettings {
  /** Epochs a trial trains at most (Ray Tune's max_t): the last rung. */
  maxEpochs: number;
  /** The first rung's epoch budget (the least any trial trains). */
  gracePeriod: number;
  /** eta: each rung keeps the top 1/eta of the trials that reach it, and has eta times the previous rung's budget. */
  reductionFactor: number;
}

/** A trial that reported at a rung, ranked among the rung's leaders. */
export interface RungEntry {
  trial: number;
  score: number;
  /** Where the trial continues from if promoted; absent once it has been promoted or cannot continue. */
  checkpointUri?: string;
}

export interface Rung {
  /** Trials that reported at this rung with a finite score. */
  reported: number;
  /** Best first (ties to the earlier trial); only those that could still be promoted or outrank one that could. */
  leaders: RungEntry[];
}

export interface AshaState {
  rungs: Rung[];
}

export interface Promotion {
  trial: number;
  /** The rung it is promoted to. */
  rung: number;
  checkpointUri: string;
}

/** Epoch budgets of the rungs: gracePeriod * eta^k while below maxEpochs, then maxEpochs, where every trial ends. */
export function rungBudgets({ maxEpochs, gracePeriod, reductionFactor }: AshaSettings): number[] {
  const budgets: number[] = [];
  for (let budget = gracePeriod; budget < maxEpochs; budget *= reductionFactor) budgets.push(budget);
  return [...budgets, maxEpochs];
}

export function initialAshaState(settings: AshaSettings): AshaState {
  return { rungs: rungBudgets(settings).map(() => ({ reported: 0, leaders: [] })) };
}

/**
 * Records `entry` at `rung` (it trained to that rung's budget; a `checkpointUri` means it may continue). A failed
 * trial or one without a finite score is not recorded: it neither takes a place nor widens the rung's top 1/eta.
 * Leaders are cut to those that could ever be promoted: of `totalTrials`, at most floor(totalTrials / eta^(k+1))
 * leave rung k, and a trial's rank only falls as more report.
 */
export function recordResult(state: AshaState, eta: number, totalTrials: number, better: 'max' | 'min', rung: number, entry: RungEntry): void {
  if (!Number.isFinite(entry.score)) return;
  const target = state.rungs[rung]!;
  target.reported++;
  if (rung === state.rungs.length - 1) return;
  const sign = better === 'max' ? -1 : 1;
  const ranked = [...target.leaders, { ...entry }].sort((a, b) => sign * (a.score - b.score) || a.trial - b.trial);
  target.leaders = ranked.slice(0, Math.floor(totalTrials / eta ** (rung + 1)));
}

/** Promotable trials: those among the top floor(reported / eta) of a rung that can continue, highest rung first. */
function promotable(state: AshaState, eta: number): { rung: number; entry: RungEntry } | null {
  for (let rung = state.rungs.length - 2; rung >= 0; rung--) {
    const { reported, leaders } = state.rungs[rung]!;
    const entry = leaders.slice(0, Math.floor(reported / eta)).find((e) => e.checkpointUri !== undefined);
    if (entry) return { rung, entry };
  }
  return null;
}

export function hasPromotion(state: AshaState, eta: number): boolean {
  return promotable(state, eta) !== null;
}

/** The next promotion, highest rung first, marked as taken; null when no trial is in its rung's top 1/eta and free to go. */
export function takePromotion(state: AshaState, eta: number): Promotion | null {
  const found = promotable(state, eta);
  if (!found) return null;
  const { rung, entry } = found;
  const promotion = { trial: entry.trial, rung: rung + 1, checkpointUri: entry.checkpointUri! };
  delete entry.checkpointUri;
  return promotion;
}
