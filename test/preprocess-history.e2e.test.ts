import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DatasetListing, DatasetSummary, ListDatasetInput, PreprocessBatchInput, PreprocessBatchResult } from '../activities/preprocessing';
import { batchSizeFor } from '../lib/schemas/preprocess';
import type { PreprocessDatasetInput } from '../lib/schemas/preprocess-dataset';
import { BATCHES_PER_RUN, preprocessDataset, preprocessProgressQuery } from '../workflows';
import { runWorkersInProcess, startTemporal, type InProcessWorkers } from './helpers/temporal';

/** Temporal warns at 10,240 events and 10 MB of history, and terminates runs at 51,200 events and 50 MB. */
const EVENTS_WARNING = 10_240;
const HISTORY_BYTES_WARNING = 10 * 1024 * 1024;
const PAYLOAD_LIMIT = 256 * 1024;

interface RunFootprint {
  events: number;
  bytes: number;
  largestPayload: number;
}

/** Bytes of every payload (data and metadata) found anywhere in a history event. */
function payloadSizes(value: unknown, sizes: number[] = []): number[] {
  if (!value || typeof value !== 'object' || ArrayBuffer.isView(value)) return sizes;
  const { data, metadata } = value as { data?: unknown; metadata?: Record<string, Uint8Array> | null };
  if (data instanceof Uint8Array && metadata !== undefined) {
    sizes.push(data.byteLength + Object.entries(metadata ?? {}).reduce((sum, [key, bytes]) => sum + key.length + bytes.byteLength, 0));
    return sizes;
  }
  for (const child of Object.values(value)) payloadSizes(child, sizes);
  return sizes;
}

/**
 * The workflow's own footprint at a million images: activities that answer at once with results of the real shape
 * and size stand in for the hours of decoding, so what is measured is the history the workflow itself writes.
 */
describe('preprocessDataset history at a million images', () => {
  let env: TestWorkflowEnvironment;
  let workflows: InProcessWorkers;
  let activities: Worker;
  let running: Promise<void>;
  /** Times each batch of the latest run was preprocessed. */
  let batchRuns: Uint8Array = new Uint8Array();
  let listed: DatasetListing;

  before(async () => {
    env = await startTemporal();
    workflows = await runWorkersInProcess(env, ['ml-pipeline']);
    activities = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'ml-cpu',
      activities: {
        async listDataset({ dataset, spec, batching }: ListDatasetInput): Promise<DatasetListing> {
          const count = dataset.maxImages ?? 1_000_000;
          const batchSize = batchSizeFor(spec, batching);
          listed = { listingUri: `artifact://sha256/12/${'12'.repeat(32)}`, count, batchSize, batches: Math.ceil(count / batchSize) };
          batchRuns = new Uint8Array(listed.batches);
          return listed;
        },
        async preprocessBatch({ batch }: PreprocessBatchInput): Promise<PreprocessBatchResult> {
          batchRuns[batch]!++;
          const images = Math.min(listed.batchSize, listed.count - batch * listed.batchSize);
          return { listed: images, kept: images - 1, leftOut: 1, cacheHit: false, bytesRead: 250_000_000, seconds: 61.5 };
        },
        async writeManifest(): Promise<DatasetSummary> {
          const counts = { train: 700_000, validation: 100_000, test: 199_000 };
          const images = { listed: listed.count, kept: listed.count - listed.batches, leftOut: listed.batches, augmentedCopies: 0 };
          return { manifestUri: `artifact://sha256/ab/${'ab'.repeat(32)}.json`, classes: [], counts, images, leftOutByReason: { corrupt: listed.batches }, decoders: { tensorflow: images.kept, png: 0, sharp: 0 }, fingerprint: 'f'.repeat(64) };
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

  /** Each run of a workflow's continue-as-new chain, from its first run, measured. */
  async function footprints(handle: WorkflowHandleWithFirstExecutionRunId, completedOnly: boolean): Promise<RunFootprint[]> {
    const runs: RunFootprint[] = [];
    for (let runId: string | undefined = handle.firstExecutionRunId; runId; ) {
      const run: WorkflowHandle = env.client.workflow.getHandle(handle.workflowId, runId);
      const { historyLength, historySize } = await run.describe();
      const events = (await run.fetchHistory()).events ?? [];
      const next = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      if (next || !completedOnly) runs.push({ events: historyLength, bytes: historySize!, largestPayload: Math.max(...events.flatMap((event) => payloadSizes(event))) });
      runId = next;
    }
    const most = (key: keyof RunFootprint) => Math.max(...runs.map((run) => run[key]));
    console.log(
      `${listed.count} images in ${listed.batches} batches of ${listed.batchSize}: ${runs.length} runs measured, at most ${most('events')} events, ` +
        `${most('bytes')} bytes of history and a ${most('largestPayload')}-byte payload per run`,
    );
    for (const run of runs) {
      assert.ok(run.events < EVENTS_WARNING, `${run.events} events`);
      assert.ok(run.bytes < HISTORY_BYTES_WARNING, `${run.bytes} bytes`);
      assert.ok(run.largestPayload < PAYLOAD_LIMIT, `a payload of ${run.largestPayload} bytes`);
    }
    return runs;
  }

  const start = (input: PreprocessDatasetInput) =>
    env.client.workflow.start(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `history-${Date.now()}`, args: [input] });

  /** Runs the workflow to its end and measures each run of its continue-as-new chain. */
  async function measure(input: PreprocessDatasetInput): Promise<RunFootprint[]> {
    const handle = await start(input);
    for (;;) {
      const { runId, status } = await handle.describe();
      if (status.name !== 'RUNNING') break;
      if (runId !== handle.firstExecutionRunId) {
        const { batchesDone, batchesTotal, imagesTotal } = await handle.query(preprocessProgressQuery);
        assert.ok(batchesDone >= BATCHES_PER_RUN, `a later run starts where the first left off, not at ${batchesDone}`);
        assert.deepEqual([batchesTotal, imagesTotal], [listed.batches, listed.count]);
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const result = await handle.result();
    assert.equal(result.batches, listed.batches);
    assert.equal(result.bytesRead, listed.batches * 250_000_000);
    assert.deepEqual(new Set(batchRuns), new Set([1]), 'every batch ran exactly once');
    const progress = await handle.query(preprocessProgressQuery);
    assert.deepEqual(progress, { stage: 'done', batchesDone: listed.batches, batchesTotal: listed.batches, imagesDone: listed.count, imagesTotal: listed.count, leftOut: listed.batches, cacheHits: 0 });
    const runs = await footprints(handle, false);
    assert.equal(runs.length, Math.ceil(listed.batches / BATCHES_PER_RUN));
    return runs;
  }

  it('stays far below Temporal’s limits with the default batching', async () => {
    const runs = await measure({ dataset: { source: 'photos' } });
    assert.equal(runs.length, 1);
  });

  it('continues as new, keeping its progress, when the batches are many: 512x512 RGB float32 images at the auto size', async () => {
    // Every run of the chain is alike (the one-batch-per-image case below runs a chain to its end), so the first two
    // runs of the 48 are measured, then the chain is stopped: running all 47,620 batches would take many minutes.
    const measuredRuns = 2;
    const handle = await start({ dataset: { source: 'photos' }, preprocess: { width: 512, height: 512, channels: 3, storage: 'float32' } });
    for (;;) {
      const progress = await handle.query(preprocessProgressQuery).catch(() => undefined);
      if (progress && progress.batchesDone >= measuredRuns * BATCHES_PER_RUN) {
        assert.deepEqual([progress.batchesTotal, progress.imagesTotal], [listed.batches, listed.count]);
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await handle.terminate('measured enough runs');
    assert.ok(listed.batches > 40 * BATCHES_PER_RUN, `${listed.batches} batches`);
    const runs = await footprints(handle, true);
    assert.ok(runs.length >= measuredRuns, `${runs.length} runs`);
    assert.deepEqual(new Set(batchRuns.subarray(0, measuredRuns * BATCHES_PER_RUN)), new Set([1]), 'every batch of the measured runs ran exactly once');
  });

  it('continues as new with one image per batch', async () => {
    const runs = await measure({ dataset: { source: 'photos', maxImages: 2_100 }, batching: { size: 1 } });
    assert.equal(runs.length, 3);
  });
});
