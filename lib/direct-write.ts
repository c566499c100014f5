import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Direct I/O (O_DIRECT) needs the memory address, the file offset and the length of each write aligned to the
 * device's logical block: 4 KiB covers the usual 512-byte and 4 KiB ones.
 */
const BLOCK = 4096;
/** Bytes copied into aligned memory and written at a time. */
const CHUNK = 4 * 1024 * 1024;
/** WebAssembly memory starts on a page boundary, which makes it aligned memory plain JavaScript cannot ask for. */
const WASM_PAGE = 65536;
/** Idle chunks kept for later writes, at most. */
const IDLE_CHUNKS = 4;

const idleChunks: Uint8Array[] = [];

type OpenDirect = (path: string) => Promise<FileHandle>;

const openDirect: OpenDirect = (path) => open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT, 0o666);

/**
 * Writes `data` to a new file at `path` bypassing the page cache, and flushes it. Returns false where direct I/O is
 * not available (not Linux, a filesystem without it): the caller then writes the file as usual, over anything here.
 *
 * Large artifacts such as shards are written once and read later, often elsewhere: through the page cache each byte
 * costs the kernel a copy and a newly allocated page (several times more where a virtual machine's host took back
 * memory the guest had freed), and pushes the images being read out of the cache.
 */
export async function writeFileDirect(path: string, data: Uint8Array, openFile: OpenDirect = openDirect): Promise<boolean> {
  if (!constants.O_DIRECT) return false;
  let file: FileHandle;
  try {
    file = await openFile(path);
  } catch (err) {
    return refusal(err);
  }
  const chunk = idleChunks.pop() ?? new Uint8Array(new WebAssembly.Memory({ initial: CHUNK / WASM_PAGE }).buffer);
  try {
    for (let offset = 0; offset < data.byteLength; offset += CHUNK) {
      const bytes = Math.min(CHUNK, data.byteLength - offset);
      const padded = Math.ceil(bytes / BLOCK) * BLOCK;
      chunk.set(data.subarray(offset, offset + bytes));
      chunk.fill(0, bytes, padded);
      for (let written = 0; written < padded; ) {
        const { bytesWritten } = await file.write(chunk, written, padded - written, offset + written);
        if (bytesWritten === 0) throw new Error(`writing ${path} made no progress`);
        written += bytesWritten;
      }
    }
    // The last write was padded to a whole block.
    await file.truncate(data.byteLength);
    await file.sync();
    return true;
  } catch (err) {
    return refusal(err);
  } finally {
    if (idleChunks.length < IDLE_CHUNKS) idleChunks.push(chunk);
    await file.close();
  }
}

/** False for a refusal of direct I/O (EINVAL: the flag, or its alignment); throws anything else. */
function refusal(err: unknown): false {
  if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  return false;
}
