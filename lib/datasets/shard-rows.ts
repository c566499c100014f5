import { open, type FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import type { ArtifactStore } from '../artifacts';
import { NPY_HEADER_MAX_BYTES, parseNpyHeader } from '../npy';
import type { PreprocessSpec } from '../schemas/preprocess';
import type { Split } from '../split';
import { InvalidDatasetError, type DatasetManifest } from './manifest';
import { checkShard, splitShards } from './shards';

/** What the reading thread is started with. */
export interface ShardRowsSetup {
  shards: { uri: string; path: string; dataOffset: number; firstRow: number; count: number }[];
  dtype: DatasetManifest['dtype'];
  spec: Pick<PreprocessSpec, 'normalization' | 'channels'>;
  rowValues: number;
  rowBytes: number;
}
export interface ShardRowsRequest {
  id: number;
  rows: Int32Array;
}
export type ShardRowsResponse = { id: number; images: Float32Array } | { id: number; error: { name: string; message: string } };

/**
 * Reads the images of one split row by row from its shard files, without loading whole shards: each row is read
 * (pread) from its position in the store's local file (the local store's own, the remote store's cached copy) and
 * normalized to float32, on a thread of its own so that reads overlap whatever this thread does meanwhile. Nothing is
 * mapped into memory, so what it holds is the batches in flight.
 */
export class ShardRowReader {
  /** Values (pixels times channels) of one image. */
  readonly rowValues: number;
  readonly count: number;
  private readonly pending = new Map<number, { resolve: (images: Float32Array) => void; reject: (err: Error) => void }>();
  private nextId = 0;

  private constructor(private readonly thread: Worker, setup: ShardRowsSetup) {
    this.rowValues = setup.rowValues;
    this.count = setup.shards.reduce((n, s) => n + s.count, 0);
    thread.on('message', (response: ShardRowsResponse) => {
      const waiting = this.pending.get(response.id)!;
      this.pending.delete(response.id);
      if (this.pending.size === 0) thread.unref();
      if ('images' in response) waiting.resolve(response.images);
      else waiting.reject(response.error.name === 'InvalidDatasetError' ? new InvalidDatasetError(response.error.message) : Object.assign(new Error(response.error.message), { name: response.error.name }));
    });
    thread.on('error', (err) => this.failAll(err));
    thread.on('exit', () => this.failAll(new Error('the shard reading thread exited')));
  }

  static async open(store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<ShardRowReader> {
    const rowValues = manifest.shape.reduce((a, b) => a * b, 1);
    const shards: ShardRowsSetup['shards'] = [];
    let firstRow = 0;
    for (const shard of splitShards(manifest, split)) {
      shards.push({ ...(await checkedShard(store, shard.imagesUri, manifest, shard.count)), firstRow, count: shard.count });
      firstRow += shard.count;
    }
    const setup: ShardRowsSetup = { shards, dtype: manifest.dtype, spec: manifest.spec, rowValues, rowBytes: rowValues * (manifest.dtype === 'uint8' ? 1 : 4) };
    const thread = new Worker(require.resolve('./shard-rows-thread'), { workerData: setup });
    thread.unref();
    return new ShardRowReader(thread, setup);
  }

  /** The normalized images at `rows` (global indices within the split), in that order. */
  read(rows: Int32Array): Promise<Float32Array> {
    for (const row of rows) if (row < 0 || row >= this.count) return Promise.reject(new RangeError(`row ${row} is outside the split's ${this.count} rows`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // Only reads in flight keep the process alive: an idle reader left open must not.
      if (this.pending.size === 0) this.thread.ref();
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage({ id, rows } satisfies ShardRowsRequest);
    });
  }

  async close(): Promise<void> {
    await this.thread.terminate();
  }

  private failAll(err: Error): void {
    for (const { reject } of this.pending.values()) reject(err);
    this.pending.clear();
  }
}

/** Checks a shard file's header against the manifest; returns where its file is and where its values start. */
async function checkedShard(store: ArtifactStore, uri: string, manifest: DatasetManifest, count: number) {
  let path: string;
  let handle: FileHandle;
  try {
    path = await store.localPath(uri);
    handle = await open(path, 'r');
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
    return { uri, path, dataOffset: header.dataOffset };
  } finally {
    await handle.close();
  }
}
