import { open, type FileHandle } from 'node:fs/promises';
import type { ArtifactStore } from '../artifacts';
import { NPY_HEADER_MAX_BYTES, parseNpyHeader } from '../npy';
import type { PreprocessSpec } from '../schemas/preprocess';
import type { Split } from '../split';
import { prefetched } from '../prefetch';
import { ThreadPool } from '../thread-pool';
import { shardOfRow } from './shard-of-row';
import { InvalidDatasetError, type DatasetManifest } from './manifest';
import { checkShard, shardRowBytes, splitShards } from './shards';

/** What the reading thread is started with. */
export interface ShardRowsSetup {
  shards: { uri: string; firstRow: number; count: number }[];
  dtype: DatasetManifest['dtype'];
  spec: Pick<PreprocessSpec, 'normalization' | 'channels'>;
  rowValues: number;
  rowBytes: number;
}
/** A shard file opened by the reader: the thread reads it through the descriptor (one table for all threads of a process). */
export interface OpenShard {
  shard: number;
  fd: number;
  /** Where the file's values start, after its `.npy` header. */
  dataOffset: number;
}
export interface ShardRowsRequest {
  id: number;
  rows: Int32Array;
  /** The open file of every shard that `rows` reads from. */
  files: OpenShard[];
}
export type ShardRowsResponse = { id: number; images: Float32Array } | { id: number; error: { name: string; message: string } };

/** Attempts at opening a shard: a remote store's cached copy can be evicted between its fetch and its opening. */
const OPEN_ATTEMPTS = 3;

/**
 * Reads the images of one split row by row from its shard files, without loading whole shards: each row is read
 * (pread) from its position in the store's local file (the local store's own, the remote store's cached copy) and
 * normalized to float32, on a thread of its own so that reads overlap whatever this thread does meanwhile. Nothing is
 * mapped into memory, so what it holds is the batches in flight.
 *
 * Files are opened as batches need them and closed once no later batch of the pass reads them: what a pass holds open
 * (and, from a remote store, in its cache) is the shards of the batches in flight: for a windowed epoch order the
 * window's, and as reads run ahead across its end the next window's. A shard the cache evicted meanwhile is fetched
 * again when a later pass needs it.
 */
export class ShardRowReader {
  /** Values (pixels times channels) of one image. */
  readonly rowValues: number;
  readonly count: number;
  /** Where each shard's values start, from its header as first opened and checked (a content address's bytes never change). */
  private readonly dataOffsets = new Map<number, number>();

  private constructor(
    private readonly store: ArtifactStore,
    private readonly manifest: DatasetManifest,
    private readonly setup: ShardRowsSetup,
    private readonly thread: ThreadPool<ShardRowsRequest, ShardRowsResponse>,
  ) {
    this.rowValues = setup.rowValues;
    this.count = setup.shards.reduce((n, s) => n + s.count, 0);
  }

  static async open(store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<ShardRowReader> {
    const rowValues = manifest.shape.reduce((a, b) => a * b, 1);
    const shards: ShardRowsSetup['shards'] = [];
    let firstRow = 0;
    for (const shard of splitShards(manifest, split)) {
      shards.push({ uri: shard.imagesUri, firstRow, count: shard.count });
      firstRow += shard.count;
    }
    const setup: ShardRowsSetup = { shards, dtype: manifest.dtype, spec: manifest.spec, rowValues, rowBytes: shardRowBytes(manifest) };
    return new ShardRowReader(store, manifest, setup, new ThreadPool(require.resolve('./shard-rows-thread'), 1, 'shard reading', setup));
  }

  /** The normalized images at `rows` (global indices within the split), in that order. */
  async read(rows: Int32Array): Promise<Float32Array> {
    for await (const images of this.batches([rows], 0)) return images;
    throw new Error('unreachable: one batch read yields one batch');
  }

  /**
   * The normalized images of each batch of rows, in order, with up to `ahead` more batches being read meanwhile. A
   * shard's file is opened when the first batch reading it is, and closed once every batch reading it has been read.
   */
  async *batches(batches: Iterable<Int32Array>, ahead: number): AsyncGenerator<Float32Array> {
    const list = [...batches];
    for (const rows of list) for (const row of rows) if (row < 0 || row >= this.count) throw new RangeError(`row ${row} is outside the split's ${this.count} rows`);
    const shardsOf = list.map((rows) => this.shardsOf(rows));
    const readers = new Map<number, number>();
    for (const shards of shardsOf) for (const s of shards) readers.set(s, (readers.get(s) ?? 0) + 1);
    const files = new Map<number, Promise<OpenShard & { handle: FileHandle }>>();
    // One shard opened at a time, in the order batches first need them: a remote store's cache takes in one new copy
    // at a time, evicting as it goes, rather than a burst of them at a window's start.
    let lastOpened: Promise<unknown> = Promise.resolve();
    const openInTurn = (s: number) => {
      const opened = lastOpened.then(() => this.openShard(s), () => this.openShard(s));
      lastOpened = opened;
      return opened;
    };
    const close = (s: number) => {
      const file = files.get(s)!;
      files.delete(s);
      return file.then(({ handle }) => handle.close(), () => undefined);
    };
    const readBatch = async (i: number): Promise<Float32Array> => {
      const shards = shardsOf[i]!;
      try {
        for (const s of shards) if (!files.has(s)) files.set(s, openInTurn(s));
        const opened = await Promise.all(shards.map((s) => files.get(s)!));
        return await this.request(list[i]!, opened.map(({ shard, fd, dataOffset }) => ({ shard, fd, dataOffset })));
      } finally {
        for (const s of shards) {
          readers.set(s, readers.get(s)! - 1);
          if (readers.get(s) === 0) await close(s);
        }
      }
    };
    try {
      yield* prefetched(list.keys(), readBatch, ahead);
    } finally {
      await Promise.all([...files.keys()].map(close));
    }
  }

  close(): Promise<void> {
    return this.thread.close();
  }

  private async request(rows: Int32Array, files: OpenShard[]): Promise<Float32Array> {
    const response = await this.thread.request({ rows, files });
    if ('images' in response) return response.images;
    const { name, message } = response.error;
    throw name === 'InvalidDatasetError' ? new InvalidDatasetError(message) : Object.assign(new Error(message), { name });
  }

  /** The shards `rows` fall in, each once. */
  private shardsOf(rows: Int32Array): number[] {
    const shards = new Set<number>();
    for (const row of rows) shards.add(shardOfRow(this.setup.shards, row));
    return [...shards];
  }

  /** Opens shard `s`'s local file (fetching a remote store's copy) and checks its header against the manifest. */
  private async openShard(s: number): Promise<OpenShard & { handle: FileHandle }> {
    const { uri, count } = this.setup.shards[s]!;
    for (let attempt = 1; ; attempt++) {
      let handle: FileHandle;
      try {
        handle = await open(await this.store.localPath(uri), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        if (attempt < OPEN_ATTEMPTS) continue;
        throw new InvalidDatasetError(`the dataset shard ${uri} is missing`);
      }
      try {
        let dataOffset = this.dataOffsets.get(s);
        if (dataOffset === undefined) this.dataOffsets.set(s, (dataOffset = await checkedDataOffset(handle, uri, this.manifest, count)));
        return { shard: s, fd: handle.fd, dataOffset, handle };
      } catch (err) {
        await handle.close();
        throw err;
      }
    }
  }
}

/** Checks a shard file's header against the manifest; returns where its values start. */
async function checkedDataOffset(handle: FileHandle, uri: string, manifest: DatasetManifest, count: number): Promise<number> {
  const start = Buffer.alloc(NPY_HEADER_MAX_BYTES);
  const { bytesRead } = await handle.read(start, 0, start.length, 0);
  let header;
  try {
    header = parseNpyHeader(start.subarray(0, bytesRead));
  } catch (err) {
    throw new InvalidDatasetError(`the dataset shard ${uri} is not a valid .npy file: ${(err as Error).message}`);
  }
  checkShard(uri, header, manifest.dtype, [count, ...manifest.shape]);
  return header.dataOffset;
}
