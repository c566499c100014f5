import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { settings } from '../lib/config';
import { newS3Client } from '../lib/s3-artifacts';
import { waitForPort } from './dev-server';
import { ensureGoTool, type GoTool } from './go-tools';

export const VERSITYGW_MODULE = 'github.com/versity/versitygw/cmd/versitygw@v1.8.0';

const VERSITYGW: GoTool = {
  name: 'versitygw',
  title: 'The versitygw S3 gateway',
  module: VERSITYGW_MODULE,
  envVar: 'VERSITYGW',
  otherwise: 'a release binary from https://github.com/versity/versitygw/releases',
};

/** Returns versitygw, building it with `go install` into the user cache when it is nowhere to be found. */
export function ensureVersitygw(): string {
  return ensureGoTool(VERSITYGW);
}

export interface ObjectStoreOptions {
  /** Folder whose subfolders are the buckets (versitygw's posix backend). */
  dataDir: string;
  host: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

export interface RunningObjectStore {
  process: ChildProcess;
  endpoint: string;
  bucket: string;
  /** The folder versitygw keeps its buckets in (a bucket's objects are files under `<dataDir>/<bucket>/`). */
  dataDir: string;
  /** The environment a worker, the CLI or a test needs to use it as the artifact store (under `prefix`). */
  env(prefix?: string): Record<string, string>;
}

/** Starts versitygw over a local folder and creates the bucket; resolves once it answers S3 requests. */
export async function startObjectStore(options: ObjectStoreOptions, stdio: 'inherit' | 'ignore' = 'inherit'): Promise<RunningObjectStore> {
  mkdirSync(options.dataDir, { recursive: true });
  // Keep-alive, as S3 itself and MinIO keep connections: without it every request opens a new connection.
  const child = spawn(ensureVersitygw(), ['--port', `${options.host}:${options.port}`, '--keep-alive', '--quiet', 'posix', options.dataDir], {
    stdio,
    // The root credentials travel in versitygw's own variables, never on its command line (visible in `ps`).
    env: { PATH: process.env.PATH, ROOT_ACCESS_KEY_ID: options.accessKeyId, ROOT_SECRET_ACCESS_KEY: options.secretAccessKey },
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`versitygw exited (${signal ?? code}) before it answered`))));
  await Promise.race([waitForPort(options.host, options.port, 30_000), exited]);
  const endpoint = `http://${options.host}:${options.port}`;
  const credentials = { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey };
  const client = newS3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  try {
    await client.send(new CreateBucketCommand({ Bucket: options.bucket }));
  } catch (err) {
    if (!(err instanceof Error) || !['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(err.name)) throw err;
  } finally {
    client.destroy();
  }
  return {
    process: child,
    endpoint,
    bucket: options.bucket,
    dataDir: options.dataDir,
    env: (prefix = 'artifacts') => ({
      TEMPORAL_ML_ARTIFACT_URL: `s3://${options.bucket}/${prefix}`,
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: options.accessKeyId,
      AWS_SECRET_ACCESS_KEY: options.secretAccessKey,
    }),
  };
}

/** `npm run objectstore`: a development object store with its data under the data dir, until Ctrl-C (`--provision`: only build it). */
async function main(): Promise<void> {
  if (process.argv.includes('--provision')) {
    console.log(`versitygw: ${ensureVersitygw()}`);
    return;
  }
  const store = await startObjectStore({
    dataDir: join(settings().dataDir, 'objectstore'),
    host: process.env.OBJECTSTORE_HOST ?? '127.0.0.1',
    port: Number(process.env.OBJECTSTORE_PORT ?? 7070),
    accessKeyId: process.env.OBJECTSTORE_ACCESS_KEY_ID ?? 'temporal-ml',
    secretAccessKey: process.env.OBJECTSTORE_SECRET_ACCESS_KEY ?? 'temporal-ml-dev-secret',
    bucket: process.env.OBJECTSTORE_BUCKET ?? 'temporal-ml',
  });
  console.log(`Object store (versitygw) at ${store.endpoint}, data in ${join(settings().dataDir, 'objectstore')}.`);
  console.log('Use it as the artifact store of workers and the CLI with:');
  for (const [name, value] of Object.entries(store.env())) console.log(`  export ${name}=${value}`);
  const stop = () => store.process.kill('SIGTERM');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise((resolve) => store.process.once('exit', resolve));
}

if (require.main === module) {
  main().catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
