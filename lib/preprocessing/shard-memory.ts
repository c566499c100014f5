import { SharedMemoryPool } from '../shared-memory-pool';

/**
 * Shared memory for a batch's shard files, reused from batch to batch (see SharedMemoryPool). The decoder threads
 * write pixels straight into it, so no pixel buffer is allocated, sent back and copied an image.
 */

/** Idle shared memory this process keeps for later batches, at most. */
const IDLE_BYTES = 512 * 1024 * 1024;

export interface ShardMemory {
  /** At least the bytes asked for. */
  bytes: Uint8Array;
  /** Gives the memory back for a later batch: only once nothing writes into it or reads from it any more. */
  release(): void;
}

const pool = new SharedMemoryPool(IDLE_BYTES, 1024 * 1024);

/** Larger blocks are not shared memory: four batches at once (an ml-cpu worker's default) always fit the pool. */
const LARGEST_SHARED = IDLE_BYTES / 4;

/**
 * Memory of at least `bytes`: the smallest idle buffer that holds them, or a new one. Beyond LARGEST_SHARED it is not
 * shared memory (the decoder threads' pixels are then copied into it), lest dropped blocks pile up.
 */
export function acquireShardMemory(bytes: number): ShardMemory {
  if (bytes > LARGEST_SHARED) return { bytes: Buffer.allocUnsafeSlow(bytes), release: () => undefined };
  const buffer = pool.acquire(bytes);
  let released = false;
  return {
    bytes: new Uint8Array(buffer, 0, bytes),
    release() {
      if (released) return;
      released = true;
      pool.release(buffer);
    },
  };
}
