import type { PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { cp, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArtifactCache } from './artifact-cache';
import {
  ArtifactNotFoundError,
  ArtifactPathError,
  DIRECTORY_MARKER,
  contentHashOf,
  contentKey,
  directoryDigest,
  filesOfFolder,
  keyOf,
  newScratchFolder,
  plainNames,
  sha256Of,
  sha256OfFile,
  totalBytes,
  uriOfKey,
  type ArtifactStore,
  type ArtifactStoreDescription,
  type FileDigest,
  type S3StoreDescription,
  type StoredArtifact,
} from './artifacts';

/** The AWS SDK, loaded on first use: a process on a local store (every training and evaluation child) never loads it. */
const clientS3 = () => require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
const libStorage = () => require('@aws-sdk/lib-storage') as typeof import('@aws-sdk/lib-storage');

/** A content-addressed object whose bytes do not hash to the sha256 its key carries (a damaged or tampered copy). */
export class ArtifactCorruptError extends Error {
  override name = 'ArtifactCorruptError';
}

/** Parts of an upload larger than this go up as a multipart upload, a few parts in flight: memory stays bounded. */
const PART_BYTES = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;

/** `s3://bucket/prefix` into its bucket and prefix (no leading or trailing slash). */
export function parseS3Url(url: string, what = 'TEMPORAL_ML_ARTIFACT_URL'): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!match) throw new ArtifactPathError(`${what}=${url}: use s3://bucket or s3://bucket/prefix.`);
  return { bucket: match[1]!, prefix: (match[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

/**
 * The S3 client this process's environment configures: endpoint (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), region
 * and credentials through the SDK's default chains (environment, shared config and credentials files). A custom
 * endpoint (MinIO, versitygw, Ceph) gets path-style addressing unless `AWS_S3_FORCE_PATH_STYLE=false`.
 */
export function s3ClientConfig(): { region?: string; endpoint?: string; forcePathStyle: boolean } {
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined;
  const region = process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined;
  return { endpoint, region, forcePathStyle: endpoint !== undefined && process.env.AWS_S3_FORCE_PATH_STYLE !== 'false' };
}

export function newS3Client(config: { region?: string; endpoint?: string; forcePathStyle: boolean; credentials?: S3StoreDescription['credentials'] }): S3Client {
  // The project supports Node 20 (package.json engines); the SDK's notice about its future releases is noise in every worker log.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new (clientS3().S3Client)({
    ...config,
    region: config.region ?? (config.endpoint ? 'us-east-1' : undefined),
    // Checksums only when an operation requires them: S3-compatible servers differ in which they accept.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

let environmentClient: S3Client | undefined;
/** One client per process configured by the environment, for what is no artifact (datasets in object storage). */
export function environmentS3Client(): S3Client {
  environmentClient ??= newS3Client(s3ClientConfig());
  return environmentClient;
}

export function s3StoreFromUrl(url: string, cacheDir: string, cacheBytes: number): S3ArtifactStore {
  return new S3ArtifactStore({ kind: 's3', ...parseS3Url(url), ...s3ClientConfig(), cacheDir, cacheBytes });
}

const statusOf = (err: unknown) => (err instanceof clientS3().S3ServiceException ? err.$metadata.httpStatusCode : undefined);
const isNotFound = (err: unknown) => statusOf(err) === 404 || (err instanceof clientS3().S3ServiceException && (err.name === 'NoSuchKey' || err.name === 'NotFound'));

interface DirectoryListing {
  files: Record<string, FileDigest>;
}

/**
 * Artifacts in an S3-compatible bucket under a prefix. Content-addressed objects are created conditionally
 * (`If-None-Match: *`): of two writers of the same content one stores it and the other finds it there. A directory
 * artifact is its files under the directory's key plus a listing of their hashes written last, so a reader never
 * sees half a directory. Every read of content-addressed bytes is verified against its sha256, and goes through a
 * bounded local cache, so what a process reads again (a trainer's shards, every epoch) is downloaded once.
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly client: S3Client;
  readonly cache: ArtifactCache;

  constructor(private readonly description: S3StoreDescription) {
    this.client = newS3Client(description);
    this.cache = new ArtifactCache(description.cacheDir, description.cacheBytes);
  }

  get localCopyBytes(): number {
    return this.description.cacheBytes;
  }

  get bucket(): string {
    return this.description.bucket;
  }

  /** The key prefix every artifact's object key starts with (no trailing slash; empty for the bucket's root). */
  get prefix(): string {
    return this.description.prefix;
  }

  private objectKey(key: string): string {
    return this.description.prefix ? `${this.description.prefix}/${key}` : key;
  }

  uriOf(key: string): string {
    return uriOfKey(key);
  }

  locationOf(uri: string): string {
    return `s3://${this.description.bucket}/${this.objectKey(keyOf(uri))}`;
  }

  async describeForChild(): Promise<ArtifactStoreDescription> {
    const credentials = await this.client.config.credentials();
    return {
      ...this.description,
      region: await this.client.config.region(),
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, sessionToken: credentials.sessionToken },
    };
  }

  async putBlob(data: Uint8Array, extension = ''): Promise<StoredArtifact> {
    const sha256 = sha256Of(data);
    const key = contentKey(sha256, extension);
    await this.putContent(key, { Body: data, ContentLength: data.byteLength });
    return { uri: this.uriOf(key), sha256, bytes: data.byteLength };
  }

  async putBlobFile(path: string, extension = ''): Promise<StoredArtifact> {
    const sha256 = await sha256OfFile(path);
    const key = contentKey(sha256, extension);
    const bytes = await this.putContentFile(key, path);
    return { uri: this.uriOf(key), sha256, bytes };
  }

  /**
   * Creates a content-addressed object unless it is there. Finding it there (412) is a success once the stored copy
   * is verified; a damaged stored copy is overwritten.
   */
  private async putContent(key: string, body: Pick<PutObjectCommandInput, 'Body' | 'ContentLength'>, verify = () => this.isIntact(key)): Promise<void> {
    try {
      await this.client.send(new (clientS3().PutObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key), IfNoneMatch: '*', ...body }));
    } catch (err) {
      if (statusOf(err) !== 412) throw err;
      if (!(await verify())) await this.client.send(new (clientS3().PutObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key), ...body }));
    }
  }

  /** As `putContent`, streaming a file in bounded parts (multipart beyond one part). Returns its size. */
  private async putContentFile(key: string, path: string, verify = () => this.isIntact(key)): Promise<number> {
    const upload = (conditional: boolean) =>
      new (libStorage().Upload)({
        client: this.client,
        partSize: PART_BYTES,
        queueSize: PARTS_IN_FLIGHT,
        params: { Bucket: this.bucket, Key: this.objectKey(key), Body: createReadStream(path), ...(conditional ? { IfNoneMatch: '*' } : {}) },
      }).done();
    try {
      await upload(true);
    } catch (err) {
      if (statusOf(err) !== 412) throw err;
      if (!(await verify())) await upload(false);
    }
    return (await stat(path)).size;
  }

  async putDirectory(files: Record<string, Uint8Array>): Promise<StoredArtifact> {
    const names = plainNames(Object.keys(files));
    const listing = new Map(names.map((name) => [name, { sha256: sha256Of(files[name]!), bytes: files[name]!.byteLength }]));
    return this.publishDirectory(listing, (key, name) => this.putContent(key, { Body: files[name]!, ContentLength: files[name]!.byteLength }, async () => false));
  }

  async scratchFolder(): Promise<string> {
    return newScratchFolder(join(this.description.cacheDir, 'scratch'));
  }

  async putDirectoryFrom(folder: string): Promise<StoredArtifact> {
    try {
      const listing = await filesOfFolder(folder);
      return await this.publishDirectory(listing, async (key, name) => {
        await this.putContentFile(key, join(folder, name), async () => false);
      });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  }

  /** Uploads a directory's files (skipped when an intact copy is there), then its listing, last. */
  private async publishDirectory(listing: Map<string, FileDigest>, putFile: (key: string, name: string) => Promise<void>): Promise<StoredArtifact> {
    const sha256 = directoryDigest(listing);
    const key = contentKey(sha256);
    const stored = { uri: this.uriOf(key), sha256, bytes: totalBytes(listing) };
    if (await this.isIntact(key)) return stored;
    // Files of a damaged copy are overwritten: `putFile` verifies nothing it finds there.
    await Promise.all([...listing.keys()].map((name) => putFile(`${key}/${name}`, name)));
    const marker = Buffer.from(JSON.stringify({ files: Object.fromEntries(listing) } satisfies DirectoryListing));
    await this.putContent(`${key}/${DIRECTORY_MARKER}`, { Body: marker, ContentLength: marker.byteLength }, async () => true);
    return stored;
  }

  async putNamed(key: string, data: Uint8Array | string): Promise<string> {
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    const uri = this.uriOf(key);
    await this.client.send(new (clientS3().PutObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key), Body: body, ContentLength: body.byteLength }));
    return uri;
  }

  async read(uri: string): Promise<Buffer> {
    const key = keyOf(uri);
    if (contentHashOf(key)) return readFile(await this.localPath(uri));
    return this.getObject(key);
  }

  async readJson<T>(uri: string): Promise<T> {
    return JSON.parse((await this.read(uri)).toString('utf8')) as T;
  }

  async readDirectory(uri: string): Promise<Record<string, Buffer>> {
    const dir = await this.localDirectory(keyOf(uri));
    const listing = await this.listingOf(keyOf(uri));
    return Object.fromEntries(await Promise.all(Object.keys(listing.files).map(async (name) => [name, await readFile(join(dir, name))] as const)));
  }

  async exists(uri: string): Promise<boolean> {
    const key = keyOf(uri);
    return (await this.objectExists(key)) || (await this.objectExists(`${key}/${DIRECTORY_MARKER}`));
  }

  async isIntactBlob(uri: string): Promise<boolean> {
    const key = keyOf(uri);
    const hash = contentHashOf(key);
    if (!hash || hash.file) throw new ArtifactPathError(`${uri} is not a content-addressed blob.`);
    return this.isIntact(key);
  }

  /** Whether the content-addressed blob or directory at `key` is there and verifies (leaving a verified copy in the cache). */
  private async isIntact(key: string): Promise<boolean> {
    try {
      await this.localPath(this.uriOf(key));
      return true;
    } catch (err) {
      if (err instanceof ArtifactNotFoundError || err instanceof ArtifactCorruptError) return false;
      throw err;
    }
  }

  async localPath(uri: string): Promise<string> {
    const key = keyOf(uri);
    const hash = contentHashOf(key);
    if (hash?.file) return join(await this.localDirectory(key.slice(0, -hash.file.length - 1)), hash.file);
    if (hash) {
      // A cached copy needs no request at all; what is not cached is a directory when its listing is there.
      return this.cache.get(cacheName(key), async (staging) => {
        if (await this.objectExists(`${key}/${DIRECTORY_MARKER}`)) await this.fillDirectory(key, staging);
        else await this.download(key, staging, hash.sha256);
      });
    }
    // A named object can be replaced: its cache entry is named by its version (ETag).
    const etag = await this.etagOf(key);
    return this.cache.get(`named-${sha256Of(Buffer.from(`${key}\0${etag}`)).slice(0, 32)}-${key.split('/').pop()}`, (staging) => this.download(key, staging));
  }

  /** The verified local copy of the content-addressed directory at `key`. */
  private async localDirectory(key: string): Promise<string> {
    return this.cache.get(cacheName(key), (staging) => this.fillDirectory(key, staging));
  }

  /** Downloads the files its listing names into `folder`, each verified, the listing checked against the address. */
  private async fillDirectory(key: string, folder: string): Promise<void> {
    const listing = await this.listingOf(key);
    await mkdir(folder, { recursive: true });
    const expected = new Map(Object.entries(listing.files));
    if (directoryDigest(expected) !== contentHashOf(key)?.sha256) throw new ArtifactCorruptError(`The listing of directory artifact ${this.locationOf(this.uriOf(key))} does not match its address.`);
    for (const [name, file] of expected) await this.download(`${key}/${name}`, join(folder, plainNames([name])[0]!), file.sha256);
  }

  private async listingOf(key: string): Promise<DirectoryListing> {
    return JSON.parse((await this.getObject(`${key}/${DIRECTORY_MARKER}`)).toString('utf8')) as DirectoryListing;
  }

  async copyOut(uri: string, dest: string): Promise<void> {
    await cp(await this.localPath(uri), dest, { recursive: true });
  }

  /** Streams an object into a file, hashing it on the way; a hash other than `sha256` (when given) is an error. */
  private async download(key: string, path: string, sha256?: string): Promise<void> {
    const hash = createHash('sha256');
    const body = await this.bodyOf(key);
    await pipeline(
      body,
      new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          done(null, chunk);
        },
      }),
      createWriteStream(path),
    );
    const actual = hash.digest('hex');
    if (sha256 && actual !== sha256) {
      await rm(path, { force: true });
      throw new ArtifactCorruptError(`${this.locationOf(this.uriOf(key))} is damaged: its bytes hash to ${actual}, not ${sha256}.`);
    }
  }

  private async bodyOf(key: string): Promise<Readable> {
    try {
      const response = await this.client.send(new (clientS3().GetObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return response.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new ArtifactNotFoundError(`No artifact at ${this.locationOf(this.uriOf(key))}.`);
      throw err;
    }
  }

  private async getObject(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.bodyOf(key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  private async etagOf(key: string): Promise<string> {
    try {
      return (await this.client.send(new (clientS3().HeadObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key) }))).ETag ?? '';
    } catch (err) {
      if (isNotFound(err)) throw new ArtifactNotFoundError(`No artifact at ${this.locationOf(this.uriOf(key))}.`);
      throw err;
    }
  }

  private async objectExists(key: string): Promise<boolean> {
    try {
      await this.etagOf(key);
      return true;
    } catch (err) {
      if (err instanceof ArtifactNotFoundError) return false;
      throw err;
    }
  }
}

/** A cache entry's name: the key's last segment keeps its extension, which some readers look at. */
const cacheName = (key: string) => key.replace(/^sha256\/[0-9a-f]{2}\//, '');
