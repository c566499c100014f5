import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { preprocessDataset } from '../workflows';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';
import { fillDevice, mountTmpfs, tmpfsUnavailable, unmountTmpfs } from './helpers/tmpfs';

/** Polls the run's pending activities until one matches; returns it. */
async function pendingActivity(handle: WorkflowHandle, matches: (activity: PendingActivity) => boolean): Promise<PendingActivity> {
  for (;;) {
    const description = await handle.describe();
    assert.equal(description.status.name, 'RUNNING', 'the run ended while the test waited on its activities');
    const found = (description.raw.pendingActivities ?? []).find(matches);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface PendingActivity {
  activityType?: { name?: string | null } | null;
  attempt?: number | null;
  lastFailure?: { message?: string | null; applicationFailureInfo?: { type?: string | null; nonRetryable?: boolean | null } | null } | null;
}

describe('a full disk under the artifact store (real Temporal server, tmpfs artifact root)', { skip: tmpfsUnavailable }, () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let artifactRoot: string;

  before(async () => {
    artifactRoot = mountTmpfs(32);
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    process.env.TEMPORAL_ML_ARTIFACT_ROOT = artifactRoot;
    env = await startTemporal();
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
  });

  after(async () => {
    await workers?.shutdown();
    await env?.teardown();
    if (artifactRoot) unmountTmpfs(artifactRoot);
  });

  it('fails the batch retryably saying the disk is full, leaves nothing partial, and completes once space is freed', async () => {
    const handle = await env.client.workflow.start(preprocessDataset, {
      taskQueue: 'ml-pipeline',
      workflowId: `disk-full-${Date.now()}`,
      args: [{ dataset: { source: 'builtin:mnist-digits', maxImages: 600 }, batching: { size: 20, parallelism: 1 } }],
    });
    await pendingActivity(handle, (a) => a.activityType?.name === 'preprocessBatch');
    const ballast = join(artifactRoot, 'ballast');
    fillDevice(ballast);

    const failing = await pendingActivity(handle, (a) => Boolean(a.lastFailure?.message));
    assert.match(failing.lastFailure!.message!, /^Disk full \(no space left on device\) writing /);
    assert.equal(failing.lastFailure!.applicationFailureInfo?.type, 'DiskFullError');
    assert.ok(!failing.lastFailure!.applicationFailureInfo?.nonRetryable, 'retryable');
    const store = new LocalArtifactStore(artifactRoot);
    const entries = readdirSync(artifactRoot, { recursive: true }).map(String);
    assert.deepEqual(entries.filter((path) => path.includes('.tmp-')), [], 'no staging file or folder is left');
    const blobs = entries.filter((path) => /^sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\.[a-z]+$/.test(path));
    for (const blob of blobs) assert.ok(await store.isIntactBlob(join(artifactRoot, blob)), `${blob} is whole`);

    rmSync(ballast);
    const result = await handle.result();
    const manifest = await store.readJson<DatasetManifest>(result.manifestUri);
    assert.equal(manifest.images.listed, 600);
    for (const shard of manifest.shards) {
      assert.ok((await store.isIntactBlob(shard.imagesUri)) && (await store.isIntactBlob(shard.labelsUri)), `shard ${shard.imagesUri} is whole`);
    }
    console.log(`disk filled after the listing; "${failing.lastFailure!.message}" before attempt ${failing.attempt}; completed after the ballast was deleted`);
  });
});
