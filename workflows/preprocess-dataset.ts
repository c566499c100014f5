import { continueAsNew, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type * as activities from '../activities';
import type { DatasetListing, DatasetSummary } from '../activities/preprocessing';
import { preprocessDatasetInputSchema, type PreprocessDatasetInput } from '../lib/schemas/preprocess-dataset';
import { ML_STAGE } from '../lib/search-attributes';
import { parseWorkflowInput } from '../lib/validate';
import { preprocessProgressQuery } from './definitions';
import { fanOut } from './fan-out';

const { listDataset, writeManifest } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5 },
});

const { preprocessBatch } = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '1 hour',
  // Batches heartbeat at least every second while they progress; a dead worker's batch moves to another within this.
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
 * Batches one run schedules before it continues as new: each batch adds 3 to 6 events (its activity and the workflow
 * task its result wakes), so a run stays under Temporal's 10,240-event warning whatever the batch count.
 */
export const BATCHES_PER_RUN = 1000;

/** What a run hands to the next when it continues as new; every batch before `progress.batchesDone` is finished. */
export interface PreprocessContinuation {
  listing: DatasetListing;
  progress: PreprocessProgress;
  bytesRead: number;
  startedAt: number;
}

/**
 * Lists a dataset source, preprocesses it in batches on `ml-cpu` workers and writes `.npy` shards and a manifest.
 * Only URIs and counts pass through the workflow, and a run continues as new every `BATCHES_PER_RUN` batches, so its
 * history stays small whatever the dataset's size or the batch size.
 */
export async function preprocessDataset(input: PreprocessDatasetInput = {}, continued?: PreprocessContinuation): Promise<PreprocessDatasetResult> {
  const startedAt = continued?.startedAt ?? Date.now();
  const progress: PreprocessProgress = continued?.progress ?? { stage: 'validating', batchesDone: 0, batchesTotal: 0, imagesDone: 0, imagesTotal: 0, leftOut: 0, cacheHits: 0 };
  setHandler(preprocessProgressQuery, () => progress);
  const config = parseWorkflowInput('preprocessDataset', preprocessDatasetInputSchema, input);
  upsertSearchAttributes([{ key: ML_STAGE, value: 'preprocessing' }]);

  let listing = continued?.listing;
  if (!listing) {
    progress.stage = 'listing';
    listing = await listDataset({ dataset: config.dataset, spec: config.preprocess, batching: config.batching });
    Object.assign(progress, { stage: 'preprocessing', batchesTotal: listing.batches, imagesTotal: listing.count });
  }
  const { listingUri } = listing;
  let bytesRead = continued?.bytesRead ?? 0;
  const first = progress.batchesDone;
  await fanOut(first, Math.min(first + BATCHES_PER_RUN, listing.batches), config.batching.parallelism, async (batch) => {
    const result = await preprocessBatch({ listingUri, batch, spec: config.preprocess });
    progress.batchesDone++;
    progress.imagesDone += result.listed;
    progress.leftOut += result.leftOut;
    if (result.cacheHit) progress.cacheHits++;
    bytesRead += result.bytesRead;
  });
  if (progress.batchesDone < listing.batches) {
    await continueAsNew<typeof preprocessDataset>(input, { listing, progress, bytesRead, startedAt });
  }

  progress.stage = 'writing manifest';
  const dataset = await writeManifest({ listingUri, spec: config.preprocess });
  progress.stage = 'done';
  return {
    ...dataset,
    batches: listing.batches,
    batchSize: listing.batchSize,
    cache: { hit: listing.batches > 0 && progress.cacheHits === listing.batches, batchesReused: progress.cacheHits },
    bytesRead,
    seconds: (Date.now() - startedAt) / 1000,
  };
}
