/**
 * The bookkeeping of distributed rounds, pure so workflow code can import it. A synchronous round is one aggregation
 * of the partitions' updates; an asynchronous round is `numWorkers` merged updates, the same amount of training.
 */

/** One round as the per-round history artifact stores it. */
export interface RoundRecord {
  round: number;
  /** Seconds from the start of the run (its first run, across continue-as-new) to the end of this round's evaluation. */
  seconds: number;
  validationAccuracy: number;
  validationLoss: number;
  /** Sample-weighted mean of the local training loss of the updates in the round. */
  trainLoss: number;
  /** Updates aggregated (sync) or merged (async) into the global model this round. */
  updates: number;
  /** Sync: partitions cancelled as stragglers this round; they train again the next. */
  skipped: number[];
  /** Async: updates dropped as too stale this round. */
  droppedStale: number;
  /** Seconds spent aggregating or merging this round. */
  aggregationSeconds: number;
}

/** Partitions a synchronous round needs once its timeout has passed: at least one. */
export function quorumCount(partitions: number, quorum: number): number {
  return Math.max(1, Math.ceil(quorum * partitions - 1e-9));
}

/** Sample-weighted mean of the updates' training loss. */
export function weightedLoss(updates: { samples: number; loss: number }[]): number {
  const samples = updates.reduce((sum, u) => sum + u.samples, 0);
  return samples ? updates.reduce((sum, u) => sum + u.samples * u.loss, 0) / samples : NaN;
}

/** Whether the run is done after `round`: its last round, or the validation target reached. */
export function reachedEnd(round: number, rounds: number, validationAccuracy: number, target: number | null): boolean {
  return round >= rounds || (target !== null && validationAccuracy >= target);
}
