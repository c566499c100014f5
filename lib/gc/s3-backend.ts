import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  NoSuchKey,
  paginateListObjectsV2,
  type _Object,
} from '@aws-sdk/client-s3';
import { ARTIFACT_SCHEME, ArtifactPathError, DIRECTORY_MARKER, keyOf } from '../artifacts';
import type { S3ArtifactStore } from '../s3-artifacts';
import type { GcBackend, StoredEntry } from './backend';

/** Where an interrupted multipart upload is listed: staging, so it goes once older than the age limit. */
const MULTIPART_STAGING = 'tmp/multipart-uploads/';
const CONTENT_DIRECTORY_FILE = /^(sha256\/[0-9a-f]{2}\/[0-9a-f]{64})\/(.+)$/;

/**
 * S3 gives times to the second: an object stamped 12:00:00 may have been written at 12:00:00.999. Taking the latest
 * time it may have been written keeps it from looking older than a run that started within that second.
 */
function latestPossible(time: Date | undefined): Date {
  if (!time) return new Date(0);
  return time.getMilliseconds() === 0 ? new Date(time.getTime() + 999) : time;
}

/**
 * Garbage collection over an object store: the objects of a content-addressed directory (a model, a listing, with its
 * completion marker) are one entry, every other object an entry of its own, and a multipart upload a killed writer
 * never completed is staging.
 */
export class S3GcBackend implements GcBackend {
  readonly references = {
    // A URI ends where a JSON string, an HTML attribute or a line does.
    pattern: new RegExp(`${ARTIFACT_SCHEME}[^\\s"'<>\\\\]+`, 'g'),
    keyOf: (uri: string) => {
      try {
        return keyOf(decodeURIComponent(uri));
      } catch (err) {
        if (err instanceof ArtifactPathError || err instanceof URIError) return undefined;
        throw err;
      }
    },
  };
  private readonly uploads = new Map<string, { objectKey: string; uploadId: string }>();

  constructor(private readonly store: S3ArtifactStore) {}

  private objectKey(key: string): string {
    return this.store.prefix ? `${this.store.prefix}/${key}` : key;
  }

  private keyOfObject(objectKey: string): string {
    return this.store.prefix ? objectKey.slice(this.store.prefix.length + 1) : objectKey;
  }

  async list(): Promise<StoredEntry[]> {
    const entries: StoredEntry[] = [];
    const directories = new Map<string, StoredEntry & { files: string[] }>();
    const Prefix = this.store.prefix ? `${this.store.prefix}/` : undefined;
    for await (const object of this.objectsUnder(Prefix)) {
      const key = this.keyOfObject(object.Key!);
      const bytes = object.Size ?? 0;
      const modified = latestPossible(object.LastModified);
      const inDirectory = CONTENT_DIRECTORY_FILE.exec(key);
      if (!inDirectory) {
        entries.push({ key, bytes, modified });
        continue;
      }
      const [, directory, file] = inDirectory as unknown as [string, string, string];
      const entry = directories.get(directory) ?? { key: directory, bytes: 0, modified, files: [] };
      entry.bytes += bytes;
      if (modified > entry.modified) entry.modified = modified;
      entry.files.push(file);
      directories.set(directory, entry);
    }

    this.uploads.clear();
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await this.store.client.send(new ListMultipartUploadsCommand({ Bucket: this.store.bucket, Prefix, KeyMarker, UploadIdMarker }));
      for (const upload of page.Uploads ?? []) {
        const key = `${MULTIPART_STAGING}${upload.UploadId}`;
        this.uploads.set(key, { objectKey: upload.Key!, uploadId: upload.UploadId! });
        entries.push({ key, bytes: 0, modified: latestPossible(upload.Initiated) });
      }
      [KeyMarker, UploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
    } while (KeyMarker);
    return [...entries, ...directories.values()];
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      const object = await this.store.client.send(new GetObjectCommand({ Bucket: this.store.bucket, Key: this.objectKey(key) }));
      return Buffer.from(await object.Body!.transformToByteArray());
    } catch (err) {
      if (err instanceof NoSuchKey) return undefined;
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    const upload = this.uploads.get(key);
    if (upload) {
      await this.store.client.send(new AbortMultipartUploadCommand({ Bucket: this.store.bucket, Key: upload.objectKey, UploadId: upload.uploadId }));
      return;
    }
    const entry = CONTENT_DIRECTORY_FILE.test(`${key}/${DIRECTORY_MARKER}`) ? await this.directoryObjects(key) : undefined;
    if (!entry) {
      await this.deleteObjects([this.objectKey(key)]);
      return;
    }
    // The completion marker goes first: a reader then finds no directory, never half of one.
    await this.deleteObjects(entry.filter((objectKey) => objectKey.endsWith(`/${DIRECTORY_MARKER}`)));
    await this.deleteObjects(entry.filter((objectKey) => !objectKey.endsWith(`/${DIRECTORY_MARKER}`)));
  }

  /** The objects under a content-addressed directory's key, or undefined when it is a plain object. */
  private async directoryObjects(key: string): Promise<string[] | undefined> {
    const keys: string[] = [];
    for await (const object of this.objectsUnder(`${this.objectKey(key)}/`)) keys.push(object.Key!);
    return keys.length > 0 ? keys : undefined;
  }

  private async *objectsUnder(Prefix: string | undefined): AsyncGenerator<_Object> {
    for await (const page of paginateListObjectsV2({ client: this.store.client }, { Bucket: this.store.bucket, Prefix })) yield* page.Contents ?? [];
  }

  private async deleteObjects(objectKeys: string[]): Promise<void> {
    for (let i = 0; i < objectKeys.length; i += 1000) {
      const Objects = objectKeys.slice(i, i + 1000).map((Key) => ({ Key }));
      if (Objects.length === 0) continue;
      const result = await this.store.client.send(new DeleteObjectsCommand({ Bucket: this.store.bucket, Delete: { Objects, Quiet: true } }));
      if (result.Errors?.length) throw new Error(`Deleting from s3://${this.store.bucket}: ${result.Errors.map((e) => `${e.Key}: ${e.Code} ${e.Message}`).join('; ')}`);
    }
  }
}
