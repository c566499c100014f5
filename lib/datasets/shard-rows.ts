import { open, type FileHandle } from 'node:fs/promises';
import type { ArtifactStore } from '../artifacts';
import { NPY_HEADER_MAX_BYTES, parseNpyHeader } from '../npy';
import { normalizeInto } from '../preprocessing/normalize';
import type { Split } from '../split';
import { InvalidDatasetError, type DatasetManifest } from './manifest';
import { checkShard, splitShards } from './shards';

interface OpenShard {
  uri: string;
  handle: FileHandle;
  /** Where the shard's pixel values start in its file. */
  dataOffset: number;
  /** Global index of the shard's first row within the split. */
  firstRow: number;
  count: number;
}

/**
 * Reads the images of one split row by row from its shard files, without loading whole shards: each row is read
 * (pread) from its position in the store's local file (the local store's own, the remote store's cached copy) and
 * normalized to float32. Nothing is mapped into memory, so what it holds is the buffers of the batches in flight.
 */
export class ShardRowReader {
  /** Values (pixels times channels) of one image. */
  readonly rowValues: number;
  readonly count: number;
  /** Bytes of one image in its shard. */
  readonly rowBytes: number;

  private constructor(
    private readonly manifest: DatasetManifest,
    private readonly shards: OpenShard[],
  ) {
    this.rowValues = manifest.shape.reduce((a, b) => a * b, 1);
    this.rowBytes = this.rowValues * (manifest.dtype === 'uint8' ? 1 : 4);
    this.count = shards.reduce((n, s) => n + s.count, 0);
  }

  static async open(store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<ShardRowReader> {
    const shards: OpenShard[] = [];
    try {
      let firstRow = 0;
      for (const shard of splitShards(manifest, split)) {
        shards.push({ ...(await openShard(store, shard.imagesUri, manifest, shard.count)), firstRow, count: shard.count });
        firstRow += shard.count;
      }
    } catch (err) {
      await Promise.all(shards.map((s) => s.handle.close()));
      throw err;
    }
    return new ShardRowReader(manifest, shards);
  }

  /** A buffer `read` can use for up to `rows` images. */
  scratchFor(rows: number): Uint8Array {
    return new Uint8Array(rows * this.rowBytes);
  }

  /** Writes the normalized images at `rows` (global indices), in that order, into `out`; `scratch` holds the raw bytes. */
  async read(rows: Int32Array, out: Float32Array, scratch: Uint8Array): Promise<void> {
    const reads: Promise<void>[] = [];
    // Rows that follow one another in one shard are read together (a validation pass reads whole runs).
    for (let start = 0; start < rows.length; ) {
      const shard = this.shardOf(rows[start]!);
      let end = start + 1;
      while (end < rows.length && rows[end] === rows[end - 1]! + 1 && rows[end]! < shard.firstRow + shard.count) end++;
      reads.push(this.readRun(shard, rows[start]! - shard.firstRow, end - start, scratch.subarray(start * this.rowBytes, end * this.rowBytes)));
      start = end;
    }
    await Promise.all(reads);
    const bytes = scratch.subarray(0, rows.length * this.rowBytes);
    if (this.manifest.dtype === 'uint8') normalizeInto(bytes, this.manifest.spec, out, 0);
    else out.set(new Float32Array(bytes.buffer, bytes.byteOffset, rows.length * this.rowValues));
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.handle.close()));
  }

  private shardOf(row: number): OpenShard {
    if (row < 0 || row >= this.count) throw new RangeError(`row ${row} is outside the split's ${this.count} rows`);
    let low = 0;
    let high = this.shards.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.shards[mid]!.firstRow <= row) low = mid;
      else high = mid - 1;
    }
    return this.shards[low]!;
  }

  private async readRun(shard: OpenShard, row: number, rows: number, into: Uint8Array): Promise<void> {
    const { bytesRead } = await shard.handle.read(into, 0, into.length, shard.dataOffset + row * this.rowBytes);
    if (bytesRead !== into.length) {
      throw new InvalidDatasetError(`the dataset shard ${shard.uri} ends before row ${row + rows - 1} of its ${shard.count}`);
    }
  }
}

/** Opens a shard's file and checks its header against the manifest. */
async function openShard(store: ArtifactStore, uri: string, manifest: DatasetManifest, count: number) {
  let handle: FileHandle;
  try {
    handle = await open(await store.localPath(uri), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidDatasetError(`the dataset shard ${uri} is missing`);
    throw err;
  }
  try {
    const start = Buffer.alloc(NPY_HEADER_MAX_BYTES);
    const { bytesRead } = await handle.read(start, 0, start.length, 0);
    let header;
    try {
      header = parseNpyHeader(start.subarray(0, bytesRead));
    } catch (err) {
      throw new InvalidDatasetError(`the dataset shard ${uri} is not a valid .npy file: ${(err as Error).message}`);
    }
    checkShard(uri, header, manifest.dtype, [count, ...manifest.shape]);
    return { uri, handle, dataOffset: header.dataOffset };
  } catch (err) {
    await handle.close();
    throw err;
  }
}
