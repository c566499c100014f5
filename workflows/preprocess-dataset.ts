import { proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { DatasetSummary, PreprocessBatchResult } from '../activities/preprocessing';
import { mapWithConcurrency } from '../lib/concurrency';
import { preprocessDatasetInputSchema, type PreprocessDatasetInput } from '../lib/schemas/preprocess-dataset';
import { ML_STAGE } from '../lib/search-attributes';
import { parseWorkflowInput } from '../lib/validate';
import { preprocessProgressQuery } from './definitions';

const { listDataset, writeManifest } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5 },
});

const { preprocessBatch } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '1 hour',
  // Batches heartbeat every 100 images; a dead worker's batch moves to another within this.
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5 },
});

export interface PreprocessProgress {
  stage: 'validating' | 'listing' | 'preprocessing' | 'writing manifest' | 'done';
  batchesDone: number;
  batchesTotal: number;
  imagesDone: number;
  imagesTotal: number;
  leftOut: number;
  cacheHits: number;
}

export interface PreprocessDatasetResult extends DatasetSummary {
  batches: number;
  batchSize: number;
  /** Batches whose shards were reused from an earlier run with the same images and spec. */
  cache: { hit: boolean; batchesReused: number };
  bytesRead: number;
  seconds: number;
}

/**
 * Lists a dataset source, preprocesses it in batches on `ml-cpu` workers and writes `.npy` shards and a manifest.
 * Only URIs and counts pass through the workflow, so its history stays small whatever the dataset's size.
 */
export async function preprocessDataset(input: PreprocessDatasetInput = {}): Promise<PreprocessDatasetResult> {
  const started = Date.now();
  const progress: PreprocessProgress = { stage: 'validating', batchesDone: 0, batchesTotal: 0, imagesDone: 0, imagesTotal: 0, leftOut: 0, cacheHits: 0 };
  setHandler(preprocessProgressQuery, () => progress);
  const config = parseWorkflowInput('preprocessDataset', preprocessDatasetInputSchema, input);
  upsertSearchAttributes([{ key: ML_STAGE, value: 'preprocessing' }]);

  progress.stage = 'listing';
  const listing = await listDataset({ dataset: config.dataset, spec: config.preprocess, batching: config.batching });
  Object.assign(progress, { stage: 'preprocessing', batchesTotal: listing.batches, imagesTotal: listing.count });
  const batchNumbers = Array.from({ length: listing.batches }, (_, batch) => batch);
  const batches = await mapWithConcurrency(batchNumbers, config.batching.parallelism, async (batch): Promise<PreprocessBatchResult> => {
    const result = await preprocessBatch({ listingUri: listing.listingUri, batch, spec: config.preprocess });
    progress.batchesDone++;
    progress.imagesDone += result.listed;
    progress.leftOut += result.leftOut;
    if (result.cacheHit) progress.cacheHits++;
    return result;
  });

  progress.stage = 'writing manifest';
  const dataset = await writeManifest({ listingUri: listing.listingUri, spec: config.preprocess, batchOutputUris: batches.map((b) => b.outputUri) });
  progress.stage = 'done';
  return {
    ...dataset,
    batches: listing.batches,
    batchSize: listing.batchSize,
    cache: { hit: batches.length > 0 && progress.cacheHits === batches.length, batchesReused: progress.cacheHits },
    bytesRead: batches.reduce((sum, b) => sum + b.bytesRead, 0),
    seconds: (Date.now() - started) / 1000,
  };
}
