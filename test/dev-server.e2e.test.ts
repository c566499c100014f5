import { Client, Connection } from '@temporalio/client';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TASK_QUEUES } from '../lib/config';
import { startDevServer, waitForPort } from '../scripts/dev-server';
import { freePort, startTemporal, temporaryDataDir } from './helpers/temporal';

/** How many partitions serve each of the project's task queues, for activities and for workflows. */
async function partitionsOf(client: Client): Promise<Record<string, { activity: number; workflow: number }>> {
  const entries = await Promise.all(
    TASK_QUEUES.map(async (name) => {
      const partitions = await client.workflowService.listTaskQueuePartitions({ namespace: 'default', taskQueue: { name } });
      return [name, { activity: partitions.activityTaskQueuePartitions?.length ?? 0, workflow: partitions.workflowTaskQueuePartitions?.length ?? 0 }] as const;
    }),
  );
  return Object.fromEntries(entries);
}

const ONE_PARTITION_EACH = Object.fromEntries(TASK_QUEUES.map((name) => [name, { activity: 1, workflow: 1 }]));

describe('the dev servers the project starts', () => {
  const dataDir = temporaryDataDir();
  let server: ChildProcess | undefined;
  let connection: Connection | undefined;

  after(async () => {
    await connection?.close();
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serve each of the project’s task queues from one partition (tests and benchmarks)', async () => {
    const env = await startTemporal();
    try {
      assert.deepEqual(await partitionsOf(env.client), ONE_PARTITION_EACH);
    } finally {
      await env.teardown();
    }
  });

  it('serve each of the project’s task queues from one partition (npm run server, the quick start)', async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    server = startDevServer({ ip: '127.0.0.1', port, uiPort, dbFilename: join(dataDir, 'temporal.db') }, 'ignore');
    await waitForPort('127.0.0.1', port, 60_000);
    connection = await Connection.connect({ address: `127.0.0.1:${port}` });
    assert.deepEqual(await partitionsOf(new Client({ connection })), ONE_PARTITION_EACH);
  });
});
