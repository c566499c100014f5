/**
 * The asynchronous update rule (FedAsync, Xie et al. 2019): an update trained from global version `v` and merged when
 * the global model is at version `v + staleness` is mixed in as `w <- (1 - a) w + a w_k`, with `a` shrinking as the
 * update grows stale. Pure, so workflow code can import it.
 */
export interface MixingSpec {
  /** Weight of a fresh update (staleness 0), in (0, 1]. */
  mixing: number;
  /** How fast the weight falls with staleness: `a = mixing * (staleness + 1)^(-stalenessExponent)`. */
  stalenessExponent: number;
}

export function mixingWeight({ mixing, stalenessExponent }: MixingSpec, staleness: number): number {
  if (!Number.isInteger(staleness) || staleness < 0) throw new RangeError(`staleness must be a non-negative integer, not ${staleness}`);
  return mixing * Math.pow(staleness + 1, -stalenessExponent);
}

/** Updates staler than `maxStaleness` global versions are dropped, not merged. */
export function isTooStale(staleness: number, maxStaleness: number): boolean {
  return staleness > maxStaleness;
}
