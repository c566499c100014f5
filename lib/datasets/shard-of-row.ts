/** The index of the shard holding `row` (a global index within a split), among shards in row order. */
export function shardOfRow(shards: readonly { firstRow: number }[], row: number): number {
  let low = 0;
  let high = shards.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (shards[mid]!.firstRow <= row) low = mid;
    else high = mid - 1;
  }
  return low;
}
