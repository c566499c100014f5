/**
 * Shared memory for a batch's shard files, reused from batch to batch. The decoder threads write pixels straight into
 * it, so no pixel buffer is allocated, sent back and copied an image. It is kept, not dropped: V8 does not count shared
 * memory towards collecting it, so buffers allocated afresh each batch would pile up until a collection for other
 * reasons, while fresh non-shared ones set off collections of the whole heap.
 */

/** Idle shared memory this process keeps for later batches, at most. */
const IDLE_BYTES = 512 * 1024 * 1024;
/** Sizes are rounded up to this, so that batches of about the same size reuse each other's memory. */
const GRANULE = 1024 * 1024;

export interface ShardMemory {
  /** At least the bytes asked for. */
  bytes: Uint8Array;
  /** Gives the memory back for a later batch: only once nothing writes into it or reads from it any more. */
  release(): void;
}

/** Smallest first. */
const idle: SharedArrayBuffer[] = [];

/** Larger blocks are not shared memory: four batches at once (an ml-cpu worker's default) always fit the pool. */
const LARGEST_SHARED = IDLE_BYTES / 4;

/**
 * Memory of at least `bytes`: the smallest idle buffer that holds them, or a new one. Beyond LARGEST_SHARED it is not
 * shared memory (the decoder threads' pixels are then copied into it), lest dropped blocks pile up.
 */
export function acquireShardMemory(bytes: number): ShardMemory {
  if (bytes > LARGEST_SHARED) return { bytes: Buffer.allocUnsafeSlow(bytes), release: () => undefined };
  const fits = idle.findIndex((buffer) => buffer.byteLength >= bytes);
  const buffer = fits === -1 ? new SharedArrayBuffer(Math.max(GRANULE, Math.ceil(bytes / GRANULE) * GRANULE)) : idle.splice(fits, 1)[0]!;
  let released = false;
  return {
    bytes: new Uint8Array(buffer, 0, bytes),
    release() {
      if (released) return;
      released = true;
      idle.push(buffer);
      // Beyond the cap, the largest idle buffers go: the common batch sizes stay.
      idle.sort((a, b) => a.byteLength - b.byteLength);
      while (idle.reduce((sum, b) => sum + b.byteLength, 0) > IDLE_BYTES) idle.pop();
    },
  };
}
