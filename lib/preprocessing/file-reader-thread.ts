/**
 * A worker thread that reads image files synchronously: a file costs one thread hop per chunk of files instead of four
 * event-loop round trips (open, stat, read, close) each, and slow storage blocks this thread, never the event loop.
 * It also hashes what it reads.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { confine } from '../artifacts';
import { SharedMemoryPool } from '../shared-memory-pool';
import { QuarantineError, quarantineReasonOf, type QuarantineReason } from './quarantine';

export interface ReadRequest {
  id: number;
  root: string;
  files: { path: string; link?: true }[];
  maxFileBytes: number;
  /** Bytes of file content sent back for this chunk; later files are hashed only, and read again when decoded. */
  returnBytes: number;
  /** Send the contents back in shared memory from this thread's pool, not in a buffer moved to the caller. */
  shared?: boolean;
  /** Shared memory of earlier responses that nothing reads any more, back to the pool. */
  reuse?: SharedArrayBuffer[];
}

export type FileResult =
  /** `offset`: where the content starts in the response's `data`; null when it was not sent back. */
  | { ok: true; sha256: string; bytes: number; offset: number | null }
  /** `reason` null: a failure of this worker (out of file handles, say), not of the file: the batch is retried. */
  | { ok: false; reason: QuarantineReason | null; code?: string; message: string };

export interface ReadResponse {
  id: number;
  results: FileResult[];
  /** The contents sent back, end to end in one buffer (one allocation per chunk, not one per file, or none: shared). */
  data: Uint8Array;
}

/** Idle shared memory a reader thread keeps for later chunks, at most. */
const IDLE_SHARED_BYTES = 64 * 1024 * 1024;
const pool = new SharedMemoryPool(IDLE_SHARED_BYTES, 256 * 1024);

type ReadFile = { ok: true; sha256: string; bytes: number; content: Uint8Array | null };

function readOne(root: string, realRoot: string, file: ReadRequest['files'][number], maxFileBytes: number, returnData: (size: number) => boolean): ReadFile {
  const path = confine(root, file.path, 'dataset file');
  if (file.link) {
    const target = realpathSync(path);
    try {
      confine(realRoot, target, 'linked file');
    } catch {
      throw new QuarantineError('outside_root', `links to ${target}, outside the dataset root`);
    }
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (file.link ? 0 : constants.O_NOFOLLOW));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new QuarantineError('unreadable', 'became a symbolic link after listing');
    throw err;
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new QuarantineError('not_a_file', info.isDirectory() ? 'is a directory' : 'is not a regular file');
    if (info.size === 0) throw new QuarantineError('empty', 'zero-byte file');
    if (info.size > maxFileBytes) throw new QuarantineError('too_large', `${info.size} bytes, over the ${maxFileBytes}-byte limit`);
    const data = new Uint8Array(info.size);
    let read = 0;
    while (read < info.size) {
      const n = readSync(fd, data, read, info.size - read, read);
      if (n === 0) break;
      read += n;
    }
    const content = data.subarray(0, read);
    return { ok: true, sha256: createHash('sha256').update(content).digest('hex'), bytes: read, content: returnData(read) ? content : null };
  } finally {
    closeSync(fd);
  }
}

const realRoots = new Map<string, string>();

parentPort?.on('message', (request: ReadRequest) => {
  for (const buffer of request.reuse ?? []) pool.release(buffer);
  let realRoot = realRoots.get(request.root);
  const results: FileResult[] = [];
  const contents: Uint8Array[] = [];
  let returned = 0;
  const returnData = (size: number) => {
    const fits = returned === 0 || returned + size <= request.returnBytes;
    if (fits) returned += size;
    return fits;
  };
  for (const file of request.files) {
    try {
      realRoot ??= realpathSync(request.root);
      realRoots.set(request.root, realRoot);
      const offset = returned;
      const { content, ...result } = readOne(request.root, realRoot, file, request.maxFileBytes, returnData);
      results.push({ ...result, offset: content ? offset : null });
      if (content) contents.push(content);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      results.push({ ok: false, reason: quarantineReasonOf(err) ?? null, code, message: (err as Error).message });
    }
  }
  const buffer = request.shared && returned > 0 ? pool.acquire(returned) : new ArrayBuffer(returned);
  const data = new Uint8Array(buffer, 0, returned);
  let offset = 0;
  for (const content of contents) {
    data.set(content, offset);
    offset += content.length;
  }
  parentPort!.postMessage({ id: request.id, results, data } satisfies ReadResponse, buffer instanceof ArrayBuffer ? [buffer] : []);
});
