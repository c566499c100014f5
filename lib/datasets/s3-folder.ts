import { GetObjectCommand, ListObjectsV2Command, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { mapWithConcurrency } from '../concurrency';
import type { ImageReader, ReadOutcome } from '../preprocessing/readers';
import { TransientReadError } from '../preprocessing/quarantine';
import { EmptyDatasetError, type FolderImage, type FolderListing } from './folder';

/**
 * Lists `s3://bucket/prefix` as `listImageFolder` lists a folder: each prefix under it is a class (sorted), every
 * object under a class is an image whatever its name, hidden names (any segment starting with ".") are skipped.
 * Paths are relative to the prefix. Listing pages through the bucket, `onEntry` called per object.
 */
export async function listS3ImageFolder(client: S3Client, bucket: string, prefix: string, onEntry: () => void = () => {}): Promise<FolderListing> {
  const base = prefix ? `${prefix}/` : '';
  const byClass = new Map<string, string[]>();
  let rootFiles = 0;
  let ContinuationToken: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base, ContinuationToken }));
    for (const object of page.Contents ?? []) {
      onEntry();
      const path = object.Key!.slice(base.length);
      const segments = path.split('/');
      if (segments.some((segment) => segment.startsWith('.')) || path.endsWith('/')) continue;
      if (segments.length === 1) {
        rootFiles++;
        continue;
      }
      const files = byClass.get(segments[0]!) ?? [];
      files.push(path);
      byClass.set(segments[0]!, files);
    }
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  const classes = [...byClass.keys()].sort();
  const where = `s3://${bucket}/${prefix}`;
  if (classes.length === 0) {
    throw new EmptyDatasetError(`${where} has no class prefixes (expected <prefix>/<class>/<image files>${rootFiles ? `; found ${rootFiles} objects directly under it` : ''})`);
  }
  const perClass: FolderImage[][] = classes.map((name, label) => byClass.get(name)!.sort().map((path) => ({ path, label })));
  return { classes, perClass };
}

/** Objects read at once by one reader: enough to hide the latency of each request. */
const READS_IN_FLIGHT = 16;

/**
 * Reads listed images from object storage: objects over `maxFileBytes` are refused from their size, without reading
 * their bytes; an object gone since the listing is left out as unreadable; a failure of the server or the network
 * throws, so the batch is retried instead of caching a good image as bad.
 */
export function s3Reader(client: S3Client, bucket: string, prefix: string, maxFileBytes: number): ImageReader {
  const base = prefix ? `${prefix}/` : '';
  return {
    async read(images, returnBytes) {
      let returned = 0;
      const outcomes = await mapWithConcurrency(images, READS_IN_FLIGHT, async ({ path }): Promise<ReadOutcome> => {
        let body: Readable;
        let size: number;
        try {
          const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${base}${path}` }));
          body = response.Body as Readable;
          size = response.ContentLength ?? 0;
        } catch (err) {
          const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
          if (status === 404) return { ok: false, reason: 'unreadable', detail: 'the object is gone' };
          throw new TransientReadError(`s3://${bucket}/${base}${path}: ${(err as Error).message}`);
        }
        if (size > maxFileBytes) {
          body.destroy();
          return { ok: false, reason: 'too_large', detail: `${size} bytes, over the limit of ${maxFileBytes}` };
        }
        if (size === 0) {
          body.destroy();
          return { ok: false, reason: 'empty', detail: 'the object is empty' };
        }
        const chunks: Buffer[] = [];
        const hash = createHash('sha256');
        try {
          for await (const chunk of body) {
            hash.update(chunk as Buffer);
            chunks.push(chunk as Buffer);
          }
        } catch (err) {
          throw new TransientReadError(`s3://${bucket}/${base}${path}: ${(err as Error).message}`);
        }
        const data = Buffer.concat(chunks);
        if (data.byteLength !== size) return { ok: false, reason: 'truncated', detail: `${data.byteLength} of ${size} bytes` };
        const keep = returned === 0 || returned + size <= returnBytes;
        if (keep) returned += size;
        return { ok: true, input: keep ? data : null, sha256: hash.digest('hex'), bytes: size };
      });
      return outcomes;
    },
  };
}
