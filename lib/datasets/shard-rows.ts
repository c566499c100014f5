import { open, type FileHandle } from 'node:fs/promises';
import type { ArtifactStore } from '../artifacts';
import { NPY_HEADER_MAX_BYTES, parseNpyHeader } from '../npy';
import type { PreprocessSpec } from '../schemas/preprocess';
import type { Split } from '../split';
import { ThreadPool } from '../thread-pool';
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

  private constructor(
    private readonly thread: ThreadPool<ShardRowsRequest, ShardRowsResponse>,
    setup: ShardRowsSetup,
  ) {
    this.rowValues = setup.rowValues;
    this.count = setup.shards.reduce((n, s) => n + s.count, 0);
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
    return new ShardRowReader(new ThreadPool(require.resolve('./shard-rows-thread'), 1, 'shard reading', setup), setup);
  }

  /** The normalized images at `rows` (global indices within the split), in that order. */
  async read(rows: Int32Array): Promise<Float32Array> {
    for (const row of rows) if (row < 0 || row >= this.count) throw new RangeError(`row ${row} is outside the split's ${this.count} rows`);
    const response = await this.thread.request({ rows });
    if ('images' in response) return response.images;
    const { name, message } = response.error;
    throw name === 'InvalidDatasetError' ? new InvalidDatasetError(message) : Object.assign(new Error(message), { name });
  }

  close(): Promise<void> {
    return this.thread.close();
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
