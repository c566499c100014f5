import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { decodeNpy } from '../lib/npy';
import type { PreprocessDatasetInput } from '../lib/schemas/preprocess-dataset';
import { preprocessDataset, preprocessProgressQuery } from '../workflows';
import { runWorkersInProcess, startTemporal, startWorkerProcess, temporaryDataDir, type InProcessWorkers, type WorkerProcess } from './helpers/temporal';

/** Files under `root` whose exact bytes an earlier file already has. */
function duplicateFiles(root: string): number {
  const files = readdirSync(root, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
  const hashes = new Set(files.map((entry) => createHash('sha256').update(readFileSync(join(entry.parentPath, entry.name))).digest('hex')));
  return files.length - hashes.size;
}

describe('preprocessDataset on worker processes that die or are cancelled (real Temporal server)', () => {
  let env: TestWorkflowEnvironment;
  let dataDir: string;
  let workflowWorker: InProcessWorkers;
  const cpuWorkers: WorkerProcess[] = [];

  before(async () => {
    dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    env = await startTemporal();
    workflowWorker = await runWorkersInProcess(env, ['ml-pipeline']);
  });

  after(async () => {
    await Promise.all(cpuWorkers.map((w) => w.stop()));
    await workflowWorker.shutdown();
    await env.teardown();
  });

  const input = (size: number): PreprocessDatasetInput => ({
    dataset: { source: 'builtin:mnist-digits' },
    preprocess: { width: 32, height: 32, channels: 3 },
    batching: { size, parallelism: 2 },
  });

  it('finishes with the same dataset after SIGKILL mid-run, with no half-written artifact', async () => {
    const first = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-cpu' });
    cpuWorkers.push(first);
    const handle = await env.client.workflow.start(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `preprocess-fault-${Date.now()}`, args: [input(250)] });
    for (;;) {
      const progress = await handle.query(preprocessProgressQuery);
      if (progress.batchesDone >= 4) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    first.process.kill('SIGKILL');
    await first.stop();
    // An uninterrupted run with other batches, to compare with: it runs while the server waits out the heartbeat
    // timeout of the batches the killed worker held.
    const referenceHandle = await env.client.workflow.start(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `preprocess-reference-${Date.now()}`, args: [input(1000)] });
    cpuWorkers.push(await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-cpu' }));
    const result = await handle.result();
    const reference = await referenceHandle.result();

    const history = await handle.fetchHistory();
    const attempts = history.events!.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt ?? 1] : []));
    assert.ok(Math.max(...attempts) > 1, 'a batch in flight at the kill was retried');
    const duplicates = duplicateFiles(join(dataDir, 'builtin', 'mnist-digits'));
    assert.deepEqual(result.leftOutByReason, duplicates ? { duplicate: duplicates } : {});
    assert.equal(result.images.kept, 10_000 - duplicates);

    // Every artifact under its final, content-addressed name holds exactly that content; every shard decodes.
    const store = new LocalArtifactStore(join(dataDir, 'artifacts'));
    const blobs = readdirSync(join(store.root, 'sha256'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.includes('.tmp-') && e.parentPath.split('/').at(-1)!.length === 2);
    for (const blob of blobs) {
      const hash = basename(blob.name).split('.')[0]!;
      assert.equal(createHash('sha256').update(readFileSync(join(blob.parentPath, blob.name))).digest('hex'), hash, blob.name);
    }
    const manifest = await store.readJson<DatasetManifest>(result.manifestUri);
    for (const shard of manifest.shards) assert.equal(decodeNpy(await store.read(shard.imagesUri)).shape[0], shard.count);

    // The uninterrupted run produces the same images, in the same splits.
    assert.equal(reference.fingerprint, result.fingerprint);
    assert.deepEqual(reference.counts, result.counts);
    console.log(`killed after 4 of ${result.batches} batches; attempts ${JSON.stringify(attempts.filter((a) => a > 1))}; ${result.images.kept} images kept; ${blobs.length} artifacts verified`);
  });

  it('stops its batches when the workflow is cancelled', async () => {
    const live = cpuWorkers.filter((w) => w.process.exitCode === null && w.process.signalCode === null).at(-1);
    const worker = live ?? (await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-cpu' }));
    if (!live) cpuWorkers.push(worker);
    // Another spec, so nothing comes from the cache of the run before.
    const handle = await env.client.workflow.start(preprocessDataset, {
      taskQueue: 'ml-pipeline',
      workflowId: `preprocess-cancel-${Date.now()}`,
      args: [{ ...input(2000), preprocess: { width: 64, height: 64, channels: 3 } }],
    });
    for (;;) {
      const progress = await handle.query(preprocessProgressQuery);
      if (progress.stage === 'preprocessing') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await handle.cancel();
    const error = await handle.result().then(() => assert.fail('the run should end cancelled'), (err: unknown) => err);
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, `got ${error}`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
      if (/temporal_ml_activity_executions_total\{activity_type="preprocessBatch",task_queue="ml-cpu",outcome="cancelled"\} [1-9]/.test(metrics)) break;
      assert.ok(Date.now() < deadline, `no preprocessBatch ended cancelled:\n${metrics.split('\n').filter((l) => l.includes('preprocessBatch')).join('\n')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
