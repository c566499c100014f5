import type { Dirent } from 'node:fs';
import { lstat, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ArtifactPathError, confine, type LocalArtifactStore } from '../artifacts';
import { kindOf, type GcBackend, type StoredEntry } from './backend';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const toKey = (path: string) => path.split(sep).join('/');
/** Store-relative URIs (`artifact://sha256/ab/<sha>.npy`, `artifact://<key>`), and the `file://` URIs under its root that runs recorded before them hold. */
const STORE_RELATIVE = 'artifact://';

/**
 * Garbage collection over a local store: a content-addressed directory (a model, a listing) or a staging folder is one
 * entry; every other file is an entry of its own.
 */
export class LocalGcBackend implements GcBackend {
  readonly references;

  constructor(private readonly store: LocalArtifactStore) {
    this.references = {
      // A URI ends where a JSON string, an HTML attribute or a line does.
      pattern: new RegExp(`(?:${escapeRegExp(pathToFileURL(store.root).href)}/|${STORE_RELATIVE})[^\\s"'<>\\\\]+`, 'g'),
      keyOf: (uri: string) => {
        try {
          const path = uri.startsWith(STORE_RELATIVE) ? store.pathOf(decodeURIComponent(uri.slice(STORE_RELATIVE.length))) : confine(store.root, fileURLToPath(uri), 'artifact');
          return toKey(relative(store.root, path));
        } catch (err) {
          if (err instanceof ArtifactPathError || err instanceof TypeError || err instanceof URIError) return undefined;
          throw err;
        }
      },
    };
  }

  async list(): Promise<StoredEntry[]> {
    const entries: StoredEntry[] = [];
    const visit = async (dir: string, groupDirectories: boolean): Promise<void> => {
      for (const item of await readdirIfThere(dir)) {
        const path = join(dir, item.name);
        const key = toKey(relative(this.store.root, path));
        if (item.isDirectory() && (groupDirectories || kindOf(key) === 'staging')) entries.push(await directoryEntry(key, path));
        else if (item.isDirectory()) await visit(path, key.startsWith('sha256/') || key === 'tmp');
        else if (item.isFile()) entries.push(await fileEntry(key, path));
      }
    };
    await visit(this.store.root, false);
    return entries;
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.store.pathOf(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    const path = this.store.pathOf(key);
    await rm(path, { recursive: true, force: true });
    if (kindOf(key) === 'named') await removeEmptyParents(dirname(path), this.store.root);
  }
}

async function readdirIfThere(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function fileEntry(key: string, path: string): Promise<StoredEntry> {
  const info = await lstat(path);
  return { key, bytes: info.size, modified: info.mtime };
}

/** A directory as one entry: its files' total size, and the newest modification of it or any file in it. */
async function directoryEntry(key: string, path: string): Promise<StoredEntry> {
  const own = await lstat(path);
  let bytes = 0;
  let modified = own.mtimeMs;
  const files: string[] = [];
  for (const item of await readdir(path, { withFileTypes: true, recursive: true })) {
    const info = await lstat(join(item.parentPath, item.name));
    modified = Math.max(modified, info.mtimeMs);
    if (item.isFile()) {
      bytes += info.size;
      files.push(toKey(relative(path, join(item.parentPath, item.name))));
    }
  }
  return { key, bytes, modified: new Date(modified), files };
}

/** Removes the folders a named artifact leaves empty, up to (not including) the store's root. */
async function removeEmptyParents(dir: string, root: string): Promise<void> {
  for (let current = dir; relative(root, current) !== '' && !relative(root, current).startsWith('..'); current = dirname(current)) {
    try {
      await rmdir(current);
    } catch {
      return;
    }
  }
}
