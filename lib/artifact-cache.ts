import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A bounded local cache of remote artifacts, shared by every process of one machine that uses the same folder:
 * an entry is filled under a staging name and renamed into place (a reader sees all of it or none); a hit refreshes
 * its modification time, and after each fill the least recently used entries go until the total fits the bound.
 */
export class ArtifactCache {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {}

  /** The path of entry `name`, filled by `fill(stagingPath)` (a file or a folder) when it is not cached. */
  async get(name: string, fill: (staging: string) => Promise<void>): Promise<string> {
    const path = join(this.dir, 'entries', name);
    if (await touch(path)) return path;
    let filling = this.pending.get(name);
    if (!filling) {
      filling = this.fill(name, path, fill).finally(() => this.pending.delete(name));
      this.pending.set(name, filling);
    }
    return filling;
  }

  private async fill(name: string, path: string, fill: (staging: string) => Promise<void>): Promise<string> {
    const staging = join(this.dir, 'staging', `${name}-${process.pid}-${randomBytes(6).toString('hex')}`);
    await mkdir(join(this.dir, 'staging'), { recursive: true });
    await mkdir(join(this.dir, 'entries'), { recursive: true });
    try {
      await fill(staging);
      try {
        await rename(staging, path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    await this.evict(name);
    return path;
  }

  /** Removes least recently used entries, never `keep`, until the cache fits its bound. */
  async evict(keep?: string): Promise<void> {
    const entries = await this.entries();
    let total = entries.reduce((sum, entry) => sum + entry.bytes, 0);
    for (const entry of entries.sort((a, b) => a.usedAt - b.usedAt)) {
      if (total <= this.maxBytes) break;
      if (entry.name === keep) continue;
      await rm(join(this.dir, 'entries', entry.name), { recursive: true, force: true });
      total -= entry.bytes;
    }
  }

  /** The cached entries with their sizes and last use. */
  async entries(): Promise<{ name: string; bytes: number; usedAt: number }[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, 'entries'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const found = await Promise.all(
      names.map(async (name) => {
        const path = join(this.dir, 'entries', name);
        try {
          const info = await stat(path);
          return { name, bytes: info.isDirectory() ? await folderBytes(path) : info.size, usedAt: info.mtimeMs };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw err;
        }
      }),
    );
    return found.filter((entry) => entry !== undefined);
  }
}

async function touch(path: string): Promise<boolean> {
  const now = new Date();
  try {
    await utimes(path, now, now);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function folderBytes(path: string): Promise<number> {
  const names = await readdir(path);
  const sizes = await Promise.all(names.map(async (name) => (await stat(join(path, name))).size));
  return sizes.reduce((sum, size) => sum + size, 0);
}
