import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mapWithConcurrency } from './concurrency';
import { writeFileDirect } from './direct-write';

/** Files from this size on are written with direct I/O where the filesystem allows it (see writeFileDirect). */
const DIRECT_WRITE_BYTES = 1024 * 1024;

/** The device (or the user's quota) ran out of space: retrying succeeds once space is freed. */
export class DiskFullError extends Error {
  override name = 'DiskFullError';
}

/**
 * Publishes a file all at once: written under a temporary name beside `path`, flushed to disk, renamed into place and
 * the rename flushed too, so neither a killed process nor a power loss leaves a half-written file at `path`.
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  await stageThenRename(path, async (staging) => {
    if (data.byteLength >= DIRECT_WRITE_BYTES && (await writeFileDirect(staging, data))) return;
    const file = await open(staging, 'w');
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
  });
}

/**
 * Publishes a directory all at once: `fill` writes its files into a temporary directory beside `path`, every file
 * and folder in it is flushed to disk, then it is renamed into place. When another writer published `path` first,
 * the new copy is dropped.
 */
export async function publishDirectory(path: string, fill: (staging: string) => Promise<void>): Promise<void> {
  await stageThenRename(path, async (staging) => {
    await mkdir(staging);
    await fill(staging);
    await syncTree(staging);
  });
}

async function stageThenRename(path: string, stage: (staging: string) => Promise<void>): Promise<void> {
  const staging = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await stage(staging);
    try {
      await rename(staging, path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await rm(staging, { recursive: true, force: true });
      return;
    }
    await syncPath(dirname(path));
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw describeDiskFull(err, path);
  }
}

/** fsync on a read-only descriptor flushes a file's data, or a directory's entries. */
async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  await mapWithConcurrency(entries, 16, (entry) => syncPath(join(entry.parentPath, entry.name)));
  await syncPath(dir);
}

function describeDiskFull(err: unknown, path: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return err;
  const what = code === 'EDQUOT' ? 'disk quota exceeded' : 'no space left on device';
  return new DiskFullError(`Disk full (${what}) writing ${path}; nothing was published. Free space and retry.`, { cause: err });
}
