import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DatasetListing, DatasetSummary, PreprocessBatchInput, PreprocessBatchResult, WriteManifestInput } from '../activities/preprocessing';
import { batchSizeFor, batchingSchema, preprocessSpecSchema } from '../lib/schemas/preprocess';
import { preprocessDataset } from '../workflows';
import { runWorkersInProcess, startTemporal, type InProcessWorkers } from './helpers/temporal';

const IMAGES = 1_000_000;
const ROOT = '/srv/temporal-ml/artifacts';
const blobUri = (i: number) => `file://${ROOT}/cache/preprocess/ab/${i.toString(16).padStart(64, '0')}.json`;

/**
 * The workflow's own footprint at a million images: activities that answer at once with results of the real shape
 * and size stand in for the hours of decoding, so what is measured is the history the workflow itself writes.
 */
describe('preprocessDataset history at a million images', () => {
  let env: TestWorkflowEnvironment;
  let workflows: InProcessWorkers;
  let activities: Worker;
  let running: Promise<void>;
  const batchSize = batchSizeFor(preprocessSpecSchema.parse({}), batchingSchema.parse({}));
  const batches = Math.ceil(IMAGES / batchSize);
  let manifestInputs = 0;

  before(async () => {
    env = await startTemporal();
    workflows = await runWorkersInProcess(env, ['ml-pipeline']);
    activities = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'ml-cpu',
      activities: {
        async listDataset(): Promise<DatasetListing> {
          return { listingUri: `file://${ROOT}/sha256/12/${'12'.repeat(32)}`, count: IMAGES, batchSize, batches };
        },
        async preprocessBatch({ batch }: PreprocessBatchInput): Promise<PreprocessBatchResult> {
          return { outputUri: blobUri(batch), listed: batchSize, kept: batchSize - 3, leftOut: 3, cacheHit: false, bytesRead: 250_000_000, seconds: 61.5 };
        },
        async writeManifest(input: WriteManifestInput): Promise<DatasetSummary> {
          manifestInputs = input.batchOutputUris.length;
          const counts = { train: 700_000, validation: 100_000, test: 197_000 };
          return { manifestUri: blobUri(-1), classes: [], counts, images: { listed: IMAGES, kept: 997_000, leftOut: 3000, augmentedCopies: 0 }, leftOutByReason: { corrupt: 3000 }, fingerprint: 'f'.repeat(64) };
        },
      },
    });
    running = activities.run();
  });

  after(async () => {
    activities.shutdown();
    await running;
    await workflows.shutdown();
    await env.teardown();
  });

  it('stays far below Temporal’s limits with the default batching', async () => {
    const handle = await env.client.workflow.start(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `history-${Date.now()}`, args: [{ dataset: { source: 'photos' } }] });
    const result = await handle.result();
    const { historyLength, historySize } = await handle.describe();
    console.log(`${IMAGES} images in ${batches} batches of ${batchSize}: ${historyLength} events, ${historySize} bytes of history`);
    assert.equal(result.batches, batches);
    assert.equal(manifestInputs, batches);
    // Temporal warns at 10,240 events and 10 MB, and terminates runs at 51,200 events and 50 MB.
    assert.ok(historyLength < 10_240, `${historyLength} events`);
    assert.ok(historySize! < 10 * 1024 * 1024, `${historySize} bytes`);
  });
});
