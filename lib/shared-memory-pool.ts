/**
 * Shared memory kept for reuse. V8 does not count shared memory towards collecting it, so buffers allocated afresh
 * and dropped would pile up until a collection for other reasons, while fresh non-shared ones (counted) set off
 * collections of the whole heap: memory that many images pass through is taken from a pool like this one instead.
 */
export class SharedMemoryPool {
  /** Smallest first. */
  private readonly idle: SharedArrayBuffer[] = [];

  constructor(
    /** Idle memory kept, at most: beyond it, the largest idle buffers go. */
    private readonly idleBytes: number,
    /** Sizes are rounded up to this, so that requests of about the same size reuse each other's buffers. */
    private readonly granule: number,
  ) {}

  /** The smallest idle buffer of at least `bytes`, or a new one. */
  acquire(bytes: number): SharedArrayBuffer {
    const fits = this.idle.findIndex((buffer) => buffer.byteLength >= bytes);
    if (fits !== -1) return this.idle.splice(fits, 1)[0]!;
    return new SharedArrayBuffer(Math.max(this.granule, Math.ceil(bytes / this.granule) * this.granule));
  }

  /** Keeps `buffer` for a later `acquire`: only once nothing reads or writes it any more. */
  release(buffer: SharedArrayBuffer): void {
    if (this.idle.includes(buffer)) return;
    this.idle.push(buffer);
    this.idle.sort((a, b) => a.byteLength - b.byteLength);
    while (this.idle.reduce((sum, b) => sum + b.byteLength, 0) > this.idleBytes) this.idle.pop();
  }
}
