import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why a small tmpfs cannot be mounted here (not root), or undefined when it can. */
export const tmpfsUnavailable = process.getuid?.() === 0 ? undefined : 'mounting a tmpfs needs root';

/** Mounts a tmpfs of `sizeMiB` on a new folder: a disk that fills up for real. */
export function mountTmpfs(sizeMiB: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}M`, 'tmpfs', dir]);
  return dir;
}

export function unmountTmpfs(dir: string): void {
  execFileSync('umount', ['--lazy', dir]);
  rmSync(dir, { recursive: true, force: true });
}

/** Writes a ballast file at `path` until its device is full; returns its size. */
export function fillDevice(path: string): number {
  const chunk = Buffer.alloc(64 * 1024, 1);
  const fd = openSync(path, 'w');
  let bytes = 0;
  try {
    for (;;) bytes += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return bytes;
}
