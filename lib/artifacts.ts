import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { publishDirectory, writeFileAtomic } from './atomic-write';
import { settings } from './config';
import { S3ArtifactStore, s3StoreFromUrl } from './s3-artifacts';

/** A user-supplied URI or path that points outside the store: a user error, never retried. */
export class ArtifactPathError extends Error {
  override name = 'ArtifactPathError';
}

/** An artifact the store does not hold; `code` matches Node's, so callers treat both backends alike. */
export class ArtifactNotFoundError extends Error {
  override name = 'ArtifactNotFoundError';
  readonly code = 'ENOENT';
}

/**
 * The JSON stored under `uri`, or undefined when nothing is: one request to an object store, where `exists` and then
 * `readJson` take up to three (a miss checks for a file and for a directory).
 */
export async function readJsonIfStored<T>(store: ArtifactStore, uri: string): Promise<T | undefined> {
  try {
    return await store.readJson<T>(uri);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface StoredArtifact {
  uri: string;
  sha256: string;
  bytes: number;
}

export const ARTIFACT_SCHEME = 'artifact://';

/** The store-relative key an `artifact://` URI (or a bare key) names, or a refusal (other schemes, `..`, absolute keys). */
export function keyOf(uriOrKey: string): string {
  if (uriOrKey.startsWith(ARTIFACT_SCHEME)) return checkedKey(uriOrKey.slice(ARTIFACT_SCHEME.length), uriOrKey);
  if (/^[a-z][a-z0-9+.-]*:/i.test(uriOrKey)) {
    throw new ArtifactPathError(`Unsupported artifact URI scheme in "${uriOrKey}": artifacts are named by artifact:// URIs.`);
  }
  return checkedKey(uriOrKey, uriOrKey);
}

export function uriOfKey(key: string): string {
  return `${ARTIFACT_SCHEME}${checkedKey(key, key)}`;
}

function checkedKey(key: string, what: string): string {
  const segments = key.split('/');
  if (key === '' || key.includes('\\') || segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new ArtifactPathError(`The artifact "${what}" is outside the artifact store; refusing to touch it.`);
  }
  return key;
}

/** Where content with this sha256 lives: `sha256/ab/abcd…[.ext]`. */
export const contentKey = (sha256: string, extension = '') => `sha256/${sha256.slice(0, 2)}/${sha256}${extension}`;

/** The sha256 a content-addressed key carries (a blob, or a file inside a directory artifact), if it is one. */
export function contentHashOf(key: string): { sha256: string; file?: string } | undefined {
  const match = /^sha256\/([0-9a-f]{2})\/([0-9a-f]{64})(?:\.[A-Za-z0-9.]+)?(?:\/(.+))?$/.exec(key);
  if (!match || !match[2]!.startsWith(match[1]!)) return undefined;
  return { sha256: match[2]!, file: match[3] };
}

/** What a child process needs to open the same store as its parent (see `openArtifactStore`). */
export type ArtifactStoreDescription = { kind: 'local'; root: string } | S3StoreDescription;

export interface S3StoreDescription {
  kind: 's3';
  bucket: string;
  prefix: string;
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
  /** Resolved by the parent; travels only in the IPC task message, never in an environment or a log. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  cacheDir: string;
  cacheBytes: number;
}

/**
 * Where artifacts live. Workflows pass `artifact://` URIs, never contents; every worker resolves them against its own
 * backend. Immutable artifacts are content-addressed (sha256), so a retried or repeated write is a no-op once the
 * stored copy is verified against its hash; no reader ever sees a half-written artifact.
 */
export interface ArtifactStore {
  uriOf(key: string): string;
  /**
   * Stores bytes under their sha256; a stored copy that is intact is kept, a damaged one replaced. Nothing reads `data`
   * once this has settled: the caller may reuse it.
   */
  putBlob(data: Uint8Array, extension?: string): Promise<StoredArtifact>;
  /** As `putBlob`, streaming the file at `path` (large shards) instead of holding it in memory. */
  putBlobFile(path: string, extension?: string): Promise<StoredArtifact>;
  /** Stores a set of plain-named files as one directory artifact, addressed by the hash of its names and contents. */
  putDirectory(files: Record<string, Uint8Array>): Promise<StoredArtifact>;
  /** A local folder to write files into one by one, for `putDirectoryFrom`. */
  scratchFolder(): Promise<string>;
  /** Stores the files of a scratch folder as `putDirectory` stores the same files; the folder is gone afterwards. */
  putDirectoryFrom(folder: string): Promise<StoredArtifact>;
  /** Writes (or replaces) a named, mutable artifact such as a manifest or checkpoint, atomically. */
  putNamed(key: string, data: Uint8Array | string): Promise<string>;
  read(uri: string): Promise<Buffer>;
  readJson<T>(uri: string): Promise<T>;
  readDirectory(uri: string): Promise<Record<string, Buffer>>;
  exists(uri: string): Promise<boolean>;
  /** True when the content-addressed blob at `uri` is there and hashes to the sha256 its name carries. */
  isIntactBlob(uri: string): Promise<boolean>;
  /** A local file or folder holding the artifact, for code that opens files (the remote backend caches a copy). */
  localPath(uri: string): Promise<string>;
  /** The bound on the local copies `localPath` keeps (the remote backend's cache), or null where it gives the artifact itself. */
  readonly localCopyBytes: number | null;
  /** Copies a file or directory artifact out to `dest`. */
  copyOut(uri: string, dest: string): Promise<void>;
  /** Where a person finds the artifact: a local path, or the object store's URL. */
  locationOf(uri: string): string;
  /** What a child process passes to `openArtifactStore` to reach this store (credentials resolved here). */
  describeForChild(): Promise<ArtifactStoreDescription>;
}

/** The artifact store on this machine's file system, under one root (`TEMPORAL_ML_ARTIFACT_ROOT`). */
export class LocalArtifactStore implements ArtifactStore {
  readonly root: string;
  readonly localCopyBytes = null;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** Resolves an `artifact://` URI (or a key, or a path inside the root) to an absolute path inside the root, or refuses it. */
  pathOf(uriOrKey: string): string {
    if (/^[a-z][a-z0-9+.-]*:/i.test(uriOrKey)) return join(this.root, keyOf(uriOrKey));
    return confine(this.root, isAbsolute(uriOrKey) ? uriOrKey : join(this.root, uriOrKey), 'artifact');
  }

  /** The URI of a key (or of a path inside the root). */
  uriOf(keyOrPath: string): string {
    const path = this.pathOf(keyOrPath);
    return uriOfKey(relative(this.root, path).split(sep).join('/'));
  }

  async putBlob(data: Uint8Array, extension = ''): Promise<StoredArtifact> {
    const sha256 = sha256Of(data);
    const path = join(this.root, contentKey(sha256, extension));
    if (!(await fileMatches(path, sha256, data.byteLength))) await writeFileAtomic(path, data);
    return { uri: this.uriOf(path), sha256, bytes: data.byteLength };
  }

  async putBlobFile(file: string, extension = ''): Promise<StoredArtifact> {
    const sha256 = await sha256OfFile(file);
    const bytes = (await stat(file)).size;
    const path = join(this.root, contentKey(sha256, extension));
    if (!(await fileMatches(path, sha256, bytes))) await publishCopy(file, path);
    return { uri: this.uriOf(path), sha256, bytes };
  }

  async putDirectory(files: Record<string, Uint8Array>): Promise<StoredArtifact> {
    const names = plainNames(Object.keys(files));
    const expected = new Map(names.map((name) => [name, { sha256: sha256Of(files[name]!), bytes: files[name]!.byteLength }]));
    return this.publishDirectoryOf(expected, (staging) => Promise.all(names.map((name) => writeFile(join(staging, name), files[name]!))));
  }

  /** A process killed while writing leaves its scratch folder under `tmp/`, never where an artifact is read. */
  async scratchFolder(): Promise<string> {
    return newScratchFolder(join(this.root, 'tmp'));
  }

  async putDirectoryFrom(folder: string): Promise<StoredArtifact> {
    try {
      const expected = await filesOfFolder(folder);
      return await this.publishDirectoryOf(expected, async (staging) => {
        for (const name of expected.keys()) await rename(join(folder, name), join(staging, name));
      });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }

  /** Publishes the files `expected` lists (written into the staging folder by `fill`) at the address of their content. */
  private async publishDirectoryOf(expected: Map<string, FileDigest>, fill: (staging: string) => Promise<unknown>): Promise<StoredArtifact> {
    const sha256 = directoryDigest(expected);
    const dir = join(this.root, contentKey(sha256));
    if (!(await directoryMatches(dir, expected))) {
      await this.discard(dir);
      // Should another writer publish the same content first, theirs stands: identical by construction.
      await publishDirectory(dir, async (staging) => {
        await fill(staging);
      });
    }
    return { uri: this.uriOf(dir), sha256, bytes: totalBytes(expected) };
  }

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

  async isIntactBlob(uri: string): Promise<boolean> {
    const path = this.pathOf(uri);
    const hash = contentHashOf(relative(this.root, path).split(sep).join('/'));
    if (!hash || hash.file) throw new ArtifactPathError(`${uri} is not a content-addressed blob.`);
    return fileMatches(path, hash.sha256);
  }

  async localPath(uri: string): Promise<string> {
    const path = this.pathOf(uri);
    if (!(await exists(path))) throw new ArtifactNotFoundError(`No artifact at ${uri} (${path}).`);
    return path;
  }

  async copyOut(uri: string, dest: string): Promise<void> {
    await cp(await this.localPath(uri), dest, { recursive: true });
  }

  locationOf(uri: string): string {
    return this.pathOf(uri);
  }

  async describeForChild(): Promise<ArtifactStoreDescription> {
    return { kind: 'local', root: this.root };
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

export interface FileDigest {
  sha256: string;
  bytes: number;
}

/** The names of a directory artifact, sorted, once each is known to be a plain file name. */
export function plainNames(names: string[]): string[] {
  for (const name of names) {
    if (name.includes('/') || name.includes('\\') || name === '..' || name === '.' || name === DIRECTORY_MARKER) {
      throw new ArtifactPathError(`File name "${name}" in a directory artifact must be a plain name.`);
    }
  }
  return [...names].sort();
}

/** The object that, in an object store, lists a directory artifact's files; written last, so its presence means complete. */
export const DIRECTORY_MARKER = '.directory.json';

/** A directory artifact's address: the hash of its sorted names and their contents' hashes. */
export function directoryDigest(files: Map<string, FileDigest>): string {
  const digest = createHash('sha256');
  for (const name of [...files.keys()].sort()) digest.update(name).update('\0').update(Buffer.from(files.get(name)!.sha256, 'hex')).update('\0');
  return digest.digest('hex');
}

export const totalBytes = (files: Map<string, FileDigest>) => [...files.values()].reduce((sum, file) => sum + file.bytes, 0);

export async function filesOfFolder(folder: string): Promise<Map<string, FileDigest>> {
  const names = plainNames(await readdir(folder));
  return new Map(await Promise.all(names.map(async (name) => [name, { sha256: await sha256OfFile(join(folder, name)), bytes: (await stat(join(folder, name))).size }] as const)));
}

export async function newScratchFolder(parent: string): Promise<string> {
  const folder = join(parent, `${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdir(folder, { recursive: true });
  return folder;
}

/** Copies a file into place as `writeFileAtomic` writes one: staged beside it, flushed, renamed. */
async function publishCopy(file: string, path: string): Promise<void> {
  const staging = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  await mkdir(dirname(path), { recursive: true });
  try {
    await cp(file, staging);
    const handle = await open(staging, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(staging, path);
  } finally {
    await rm(staging, { force: true });
  }
}

/** Returns `path` resolved, or throws when it lies outside `root` (`..` segments, absolute paths elsewhere). */
export function confine(root: string, path: string, what: string): string {
  const absolute = resolve(root, path);
  const rel = relative(resolve(root), absolute);
  if (rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel))) return absolute;
  throw new ArtifactPathError(`The ${what} path "${path}" is outside ${resolve(root)}; refusing to touch it.`);
}

export const sha256Of = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

export async function sha256OfFile(path: string): Promise<string> {
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

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

let defaultStore: ArtifactStore | undefined;
/** The store configured for this process: `TEMPORAL_ML_ARTIFACT_URL` (s3://bucket/prefix), else `TEMPORAL_ML_ARTIFACT_ROOT`. */
export function artifactStore(): ArtifactStore {
  if (!defaultStore) {
    const { artifactUrl, artifactRoot, artifactCacheDir, artifactCacheBytes } = settings();
    defaultStore = artifactUrl ? s3StoreFromUrl(artifactUrl, artifactCacheDir, artifactCacheBytes) : new LocalArtifactStore(artifactRoot);
  }
  return defaultStore;
}

/** Replaces the store this process uses (a benchmark comparing backends in one process); undefined: the configured one again. */
export function useArtifactStore(store: ArtifactStore | undefined): void {
  defaultStore = store;
}

const openStores = new Map<string, ArtifactStore>();

/**
 * Opens the store a parent process described (`describeForChild`), in a child process: one per description, since a
 * warm child serves task after task, and a store opened per task would leave an S3 client (and its pooled
 * connections) behind each time.
 */
export function openArtifactStore(description: ArtifactStoreDescription): ArtifactStore {
  const key = JSON.stringify(description);
  let store = openStores.get(key);
  if (!store) {
    store = description.kind === 'local' ? new LocalArtifactStore(description.root) : new S3ArtifactStore(description);
    openStores.set(key, store);
  }
  return store;
}
