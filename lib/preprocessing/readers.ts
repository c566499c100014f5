import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactStore } from '../artifacts';
import { ThreadPool } from '../thread-pool';
import type { IdxImageFile, ListedImage } from '../datasets/listing';
import type { ReadRequest, ReadResponse } from './file-reader-thread';
import { QuarantineError, TransientReadError, type LeftOutFile } from './quarantine';
import type { ImageInput } from './transform';

/** An image read and hashed; `input` is null when its bytes were not kept (read it again to decode it). */
export type ReadOutcome = { ok: true; input: ImageInput | null; sha256: string; bytes: number } | { ok: false; reason: LeftOutFile['reason']; detail: string };

/**
 * How long the caller keeps what a read returns: until the reader closes (a batch's chunks), or only until that image
 * is decoded (a file read again): memory held until the reader closes is not given back sooner.
 */
export type ReadScope = 'untilClose' | 'oneImage';

/** Reads listed images in chunks. What cannot be read is an outcome; a failure of this worker (not the file) throws. */
export interface ImageReader {
  /** Returns the content of the first images of the chunk up to `returnBytes` (at least one); the rest only hashed. */
  read(images: ListedImage[], returnBytes: number, scope?: ReadScope): Promise<ReadOutcome[]>;
  /** Releases files the reader keeps open, for readers that keep any. */
  close?(): Promise<void>;
}

/** File-reader threads shared by every batch in this process, started on first use. */
const readerThreads = new ThreadPool<ReadRequest, ReadResponse>(join(__dirname, 'file-reader-thread.js'), 2, 'file reader');

/** Shared memory of closed readers' responses, handed back to the reader threads' pools with the next request. */
const finished: SharedArrayBuffer[] = [];
/** What `finished` holds at most: with no request to carry them back, the rest are dropped. */
const FINISHED_BYTES = 128 * 1024 * 1024;

/**
 * Reads image files under a folder root on reader threads. Regular files are opened without following links (a file
 * swapped for a link after listing is refused); listed links must resolve inside the root; FIFOs, devices and
 * directories are refused without blocking on them; files over `maxFileBytes` are refused without being read.
 * Contents read `untilClose` come back in shared memory (passed on to the decoder threads without a copy), which goes
 * back to the reader threads when the reader is closed: nothing may read them after that.
 */
export function folderReader(root: string, maxFileBytes: number): Required<ImageReader> {
  const handedOut: SharedArrayBuffer[] = [];
  return {
    async read(images, returnBytes, scope = 'untilClose') {
      const files = images.map(({ path, link }) => (link ? { path, link } : { path }));
      const reuse = finished.splice(0);
      const { results, data } = await readerThreads.request({ root, files, maxFileBytes, returnBytes, shared: scope === 'untilClose', reuse });
      if (data.buffer instanceof SharedArrayBuffer) handedOut.push(data.buffer);
      return results.map((result): ReadOutcome => {
        if (result.ok) {
          const input = result.offset === null ? null : Buffer.from(data.buffer, data.byteOffset + result.offset, result.bytes);
          return { ok: true, input, sha256: result.sha256, bytes: result.bytes };
        }
        if (result.reason === null) throw new TransientReadError(result.message, result.code);
        return { ok: false, reason: result.reason, detail: result.message };
      });
    },
    async close() {
      let bytes = finished.reduce((sum, buffer) => sum + buffer.byteLength, 0);
      for (const buffer of handedOut.splice(0)) {
        if (bytes + buffer.byteLength > FINISHED_BYTES) break;
        finished.push(buffer);
        bytes += buffer.byteLength;
      }
    },
  };
}

/**
 * Reads one whole file under `root` on a reader thread, with the checks images get: a link must resolve inside the
 * root, a FIFO or device is refused without blocking on it, a file over `maxBytes` without being read. Throws a
 * QuarantineError saying what is wrong with the file, or a TransientReadError for a failure of this worker.
 */
export async function readConfinedFile(root: string, path: string, maxBytes: number): Promise<Uint8Array> {
  const { results, data } = await readerThreads.request({ root, files: [{ path, link: true }], maxFileBytes: maxBytes, returnBytes: Infinity });
  const result = results[0]!;
  if (result.ok) return data;
  if (result.reason === null) throw new TransientReadError(result.message, result.code);
  throw new QuarantineError(result.reason, result.message);
}

/** Reads records of IDX image files already decompressed into the artifact store, in place. */
export function idxReader(files: IdxImageFile[], store: ArtifactStore): ImageReader {
  const handles = new Map<number, Promise<FileHandle>>();
  const handleOf = (file: number) => {
    let handle = handles.get(file);
    if (!handle) {
      handle = store.localPath(files[file]!.pixelsUri).then((path) => open(path, 'r'));
      handles.set(file, handle);
    }
    return handle;
  };
  const readRecord = async (image: ListedImage): Promise<ReadOutcome> => {
    const [fileIndex, record] = image.record!;
    const file = files[fileIndex]!;
    const size = file.width * file.height;
    const pixels = new Uint8Array(size);
    const { bytesRead } = await (await handleOf(fileIndex)).read(pixels, 0, size, record * size);
    if (bytesRead !== size) return { ok: false, reason: 'truncated', detail: `record ${record} ends after ${bytesRead} of ${size} bytes` };
    const sha256 = createHash('sha256').update(pixels).digest('hex');
    return { ok: true, input: { pixels, width: file.width, height: file.height, channels: 1 }, sha256, bytes: size };
  };
  return {
    read: (images) => Promise.all(images.map(readRecord)),
    async close() {
      await Promise.all([...handles.values()].map(async (h) => (await h).close()));
    },
  };
}
