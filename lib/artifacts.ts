import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { publishDirectory, writeFileAtomic } from './atomic-write';
import { settings } from './config';

/** A user-supplied URI or path that points outside the store: a user error, never retried. */
export class ArtifactPathError extends Error {
  override name = 'ArtifactPathError';
}

export interface StoredArtifact {
  uri: string;
  sha256: string;
  bytes: number;
}

/**
 * Artifacts live under one root; workflows pass their `file://` URIs, never their contents.
 * Immutable artifacts are content-addressed (sha256), so a retried or repeated write is a no-op once the stored copy
 * is verified against its hash. Every write goes to a temporary name, is flushed to disk and renamed into place, so
 * neither a killed process nor a power loss leaves a half-written artifact where a reader can see it.
 */
export class LocalArtifactStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** Resolves a `file://` URI (or a path relative to the root) to an absolute path inside the root, or refuses it. */
  pathOf(uriOrKey: string): string {
    let path: string;
    if (uriOrKey.startsWith('file://')) path = fileURLToPath(uriOrKey);
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uriOrKey)) {
      throw new ArtifactPathError(`Unsupported artifact URI scheme in "${uriOrKey}": this store reads file:// URIs under ${this.root}.`);
    } else path = isAbsolute(uriOrKey) ? uriOrKey : join(this.root, uriOrKey);
    return confine(this.root, path, 'artifact');
  }

  uriOf(path: string): string {
    return pathToFileURL(confine(this.root, path, 'artifact')).href;
  }

  /**
   * Stores bytes under their sha256; returns the existing artifact when the same content is already stored intact.
   * A stored copy whose size or hash does not match (truncated, flipped bits) is replaced.
   */
  async putBlob(data: Uint8Array, extension = ''): Promise<StoredArtifact> {
    const sha256 = sha256Of(data);
    const path = join(this.root, 'sha256', sha256.slice(0, 2), `${sha256}${extension}`);
    if (!(await fileMatches(path, sha256, data.byteLength))) await writeFileAtomic(path, data);
    return { uri: this.uriOf(path), sha256, bytes: data.byteLength };
  }

  /**
   * Stores a set of files as one directory artifact (for example a TensorFlow.js model: model.json + weights),
   * addressed by the hash of its names and contents. A stored copy with missing, extra or altered files is replaced.
   */
  async putDirectory(files: Record<string, Uint8Array>): Promise<StoredArtifact> {
    const names = Object.keys(files).sort();
    for (const name of names) {
      if (name.includes('/') || name.includes('\\') || name === '..' || name === '.') {
        throw new ArtifactPathError(`File name "${name}" in a directory artifact must be a plain name.`);
      }
    }
    const expected = new Map(names.map((name) => [name, { sha256: sha256Of(files[name]!), bytes: files[name]!.byteLength }]));
    return this.publishDirectoryOf(expected, (staging) => Promise.all(names.map((name) => writeFile(join(staging, name), files[name]!))));
  }

  /**
   * A folder of this store's file system to write files into one by one (those too large to hold in memory), for
   * `putDirectoryFrom`. A process killed while writing leaves it under `tmp/`, never where an artifact is read.
   */
  async scratchFolder(): Promise<string> {
    const folder = join(this.root, 'tmp', `${process.pid}-${randomBytes(6).toString('hex')}`);
    await mkdir(folder, { recursive: true });
    return folder;
  }

  /** Stores the files of a scratch folder as `putDirectory` stores the same files; the folder is gone afterwards. */
  async putDirectoryFrom(folder: string): Promise<StoredArtifact> {
    const names = (await readdir(folder)).sort();
    const expected = new Map(
      await Promise.all(names.map(async (name) => [name, { sha256: await sha256OfFile(join(folder, name)), bytes: (await stat(join(folder, name))).size }] as const)),
    );
    try {
      return await this.publishDirectoryOf(expected, async (staging) => {
        for (const name of names) await rename(join(folder, name), join(staging, name));
      });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }

  /** Publishes the files `expected` lists (written into the staging folder by `fill`) at the address of their content. */
  private async publishDirectoryOf(expected: Map<string, { sha256: string; bytes: number }>, fill: (staging: string) => Promise<unknown>): Promise<StoredArtifact> {
    const digest = createHash('sha256');
    for (const name of [...expected.keys()].sort()) digest.update(name).update('\0').update(Buffer.from(expected.get(name)!.sha256, 'hex')).update('\0');
    const sha256 = digest.digest('hex');
    const dir = join(this.root, 'sha256', sha256.slice(0, 2), sha256);
    if (!(await directoryMatches(dir, expected))) {
      await this.discard(dir);
      // Should another writer publish the same content first, theirs stands: identical by construction.
      await publishDirectory(dir, async (staging) => {
        await fill(staging);
      });
    }
    const bytes = [...expected.values()].reduce((sum, file) => sum + file.bytes, 0);
    return { uri: this.uriOf(dir), sha256, bytes };
  }

  /** Writes (or replaces) a named, mutable artifact such as a manifest or checkpoint, atomically. */
  async putNamed(key: string, data: Uint8Array | string): Promise<string> {
    const path = this.pathOf(key);
    await writeFileAtomic(path, typeof data === 'string' ? Buffer.from(data) : data);
    return this.uriOf(path);
  }

  async read(uri: string): Promise<Buffer> {
    return readFile(this.pathOf(uri));
  }

  async readJson<T>(uri: string): Promise<T> {
    return JSON.parse((await this.read(uri)).toString('utf8')) as T;
  }

  async readDirectory(uri: string): Promise<Record<string, Buffer>> {
    const dir = this.pathOf(uri);
    const names = await readdir(dir);
    const entries = await Promise.all(names.map(async (name) => [name, await readFile(join(dir, name))] as const));
    return Object.fromEntries(entries);
  }

  async exists(uri: string): Promise<boolean> {
    return exists(this.pathOf(uri));
  }

  /**
   * True when the content-addressed blob at `uri` is there and its bytes hash to the sha256 its name carries:
   * what a cache must check before reusing it.
   */
  async isIntactBlob(uri: string): Promise<boolean> {
    const path = this.pathOf(uri);
    const sha256 = /^[0-9a-f]{64}/.exec(basename(path))?.[0];
    if (!sha256) throw new ArtifactPathError(`${uri} is not a content-addressed blob.`);
    return fileMatches(path, sha256);
  }

  /** Moves a damaged directory artifact out of the way (one rename, so readers see all of it or none) and deletes it. */
  private async discard(dir: string): Promise<void> {
    const doomed = `${dir}.discard-${process.pid}-${randomBytes(6).toString('hex')}`;
    try {
      await rename(dir, doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }
}

/** Returns `path` resolved, or throws when it lies outside `root` (`..` segments, absolute paths elsewhere). */
export function confine(root: string, path: string, what: string): string {
  const absolute = resolve(root, path);
  const rel = relative(resolve(root), absolute);
  if (rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel))) return absolute;
  throw new ArtifactPathError(`The ${what} path "${path}" is outside ${resolve(root)}; refusing to touch it.`);
}

const sha256Of = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Whether the file at `path` holds exactly the content with this sha256 (and size, checked first: it costs no read). */
async function fileMatches(path: string, sha256: string, bytes?: number): Promise<boolean> {
  try {
    if (bytes !== undefined && (await stat(path)).size !== bytes) return false;
    return (await sha256OfFile(path)) === sha256;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function directoryMatches(dir: string, expected: Map<string, { sha256: string; bytes: number }>): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (names.length !== expected.size || names.some((name) => !expected.has(name))) return false;
  const matches = await Promise.all(names.map((name) => fileMatches(join(dir, name), expected.get(name)!.sha256, expected.get(name)!.bytes)));
  return matches.every(Boolean);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

let defaultStore: LocalArtifactStore | undefined;
/** The store configured for this process (`TEMPORAL_ML_ARTIFACT_ROOT`). */
export function artifactStore(): LocalArtifactStore {
  defaultStore ??= new LocalArtifactStore(settings().artifactRoot);
  return defaultStore;
}
