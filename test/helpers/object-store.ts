import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startObjectStore, type RunningObjectStore } from '../../scripts/object-store';
import { freePort } from './temporal';

/** A real S3-compatible server (versitygw) on a free port over a temporary folder, with one bucket. */
export async function startTestObjectStore(): Promise<RunningObjectStore & { stop: () => Promise<void> }> {
  const store = await startObjectStore(
    {
      dataDir: mkdtempSync(join(tmpdir(), 'objectstore-')),
      host: '127.0.0.1',
      port: await freePort(),
      accessKeyId: 'test-access-key',
      secretAccessKey: 'test-secret-key-never-logged',
      bucket: 'temporal-ml-test',
    },
    'ignore',
  );
  const stop = async () => {
    if (store.process.exitCode !== null || store.process.signalCode !== null) return;
    const exited = new Promise((resolve) => store.process.once('exit', resolve));
    store.process.kill('SIGTERM');
    await exited;
  };
  return { ...store, stop };
}
