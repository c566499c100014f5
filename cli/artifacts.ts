import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { artifactStore } from '../lib/artifacts';
import { mapWithConcurrency } from '../lib/concurrency';
import { environmentS3Client, parseS3Url } from '../lib/s3-artifacts';

export const ARTIFACT_USAGE = 'artifact get <artifact:// URI> <destination>';
export const DATASET_USAGE = 'dataset upload <folder> <s3://bucket/prefix>';

/** `artifact get`: copies a file or directory artifact out of the configured store (the object store's via its cache). */
export async function artifactCommand(args: string[], print: (line: string) => void): Promise<boolean> {
  const [verb, uri, dest] = args;
  if (verb !== 'get' || !uri || !dest) return false;
  const store = artifactStore();
  await store.copyOut(uri, resolve(dest));
  print(`${store.locationOf(uri)} -> ${resolve(dest)}`);
  return true;
}

/** Objects uploaded at once: enough to hide each request's latency. */
const UPLOADS_IN_FLIGHT = 16;

/**
 * `dataset upload`: copies a folder with one sub-folder per class to `s3://bucket/prefix/<class>/…`, the layout a
 * `dataset.source` of `s3://bucket/prefix` reads. Hidden files are skipped, as the listing skips them.
 */
export async function datasetCommand(args: string[], print: (line: string) => void): Promise<boolean> {
  const [verb, folder, url] = args;
  if (verb !== 'upload' || !folder || !url) return false;
  const { bucket, prefix } = parseS3Url(url, 'destination');
  const root = resolve(folder);
  const files = (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .filter((path) => !path.split('/').some((segment) => segment.startsWith('.')))
    .sort();
  const client = environmentS3Client();
  let done = 0;
  await mapWithConcurrency(files, UPLOADS_IN_FLIGHT, async (path) => {
    const key = prefix ? `${prefix}/${path}` : path;
    await new Upload({ client, params: { Bucket: bucket, Key: key, Body: createReadStream(join(root, path)) } }).done();
    if (++done % 1000 === 0) print(`${done} of ${files.length} files`);
  });
  print(`Uploaded ${files.length} files from ${root} to s3://${bucket}/${prefix}; use it as "dataset": {"source": "s3://${bucket}/${prefix}"}.`);
  return true;
}
