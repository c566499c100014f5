import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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
 * Immutable artifacts are content-addressed (sha256), so a retried or repeated write is a no-op.
 * Every write goes to a temporary name first and is renamed into place, so a killed process never leaves a
 * half-written artifact where a reader can see it.
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

  /** Stores bytes under their sha256; returns the existing artifact when the same content is already stored. */
  async putBlob(data: Uint8Array, extension = ''): Promise<StoredArtifact> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const path = join(this.root, 'sha256', sha256.slice(0, 2), `${sha256}${extension}`);
    if (!(await exists(path))) await this.writeAtomic(path, data);
    return { uri: this.uriOf(path), sha256, bytes: data.byteLength };
  }

  /**
   * Stores a set of files as one directory artifact (for example a TensorFlow.js model: model.json + weights),
   * addressed by the hash of its names and contents.
   */
  async putDirectory(files: Record<string, Uint8Array>): Promise<StoredArtifact> {
    const names = Object.keys(files).sort();
    const digest = createHash('sha256');
    let bytes = 0;
    for (const name of names) {
      if (name.includes('/') || name.includes('\\') || name === '..' || name === '.') {
        throw new ArtifactPathError(`File name "${name}" in a directory artifact must be a plain name.`);
      }
      const content = files[name]!;
      digest.update(name).update('\0').update(createHash('sha256').update(content).digest()).update('\0');
      bytes += content.byteLength;
    }
    const sha256 = digest.digest('hex');
    const dir = join(this.root, 'sha256', sha256.slice(0, 2), sha256);
    if (!(await exists(dir))) {
      const staging = this.stagingPath(dir);
      await mkdir(staging, { recursive: true });
      await Promise.all(names.map((name) => writeFile(join(staging, name), files[name]!)));
      await mkdir(dirname(dir), { recursive: true });
      await rename(staging, dir).catch(async (err: NodeJS.ErrnoException) => {
        // Another writer stored the same content first: identical by construction, so theirs stands.
        await rm(staging, { recursive: true, force: true });
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
    }
    return { uri: this.uriOf(dir), sha256, bytes };
  }

  /** Writes (or replaces) a named, mutable artifact such as a manifest or checkpoint, atomically. */
  async putNamed(key: string, data: Uint8Array | string): Promise<string> {
    const path = this.pathOf(key);
    await this.writeAtomic(path, typeof data === 'string' ? Buffer.from(data) : data);
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

  private stagingPath(target: string): string {
    return `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  }

  private async writeAtomic(path: string, data: Uint8Array): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    const staging = this.stagingPath(path);
    try {
      await writeFile(staging, data);
      await rename(staging, path);
    } catch (err) {
      await rm(staging, { force: true });
      throw err;
    }
  }
}

/** Returns `path` resolved, or throws when it lies outside `root` (`..` segments, absolute paths elsewhere). */
export function confine(root: string, path: string, what: string): string {
  const absolute = resolve(root, path);
  const rel = relative(resolve(root), absolute);
  if (rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel))) return absolute;
  throw new ArtifactPathError(`The ${what} path "${path}" is outside ${resolve(root)}; refusing to touch it.`);
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
