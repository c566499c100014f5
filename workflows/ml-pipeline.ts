import { defineQuery, executeChild, proxyActivities, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type * as activities from '../activities';
import { mlPipelineInputSchema, type MlPipelineInput } from '../lib/schemas/ml-pipeline';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import type { Split } from '../lib/split';
import { parseWorkflowInput } from '../lib/validate';
import { inBatches, mapWithConcurrency } from './concurrency';
import { trainModel } from './train-model';

const cpu = proxyActivities<typeof activities>({
  taskQueue: 'ml-cpu',
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5 },
});

export type PipelineStage = 'validating' | 'preprocessing' | 'training' | 'done';

export interface PipelineProgress {
  stage: PipelineStage;
  batchesDone: number;
  batchesTotal: number;
}

export interface MlPipelineResult {
  modelName: string;
  testAccuracy: number;
  testLoss: number;
  backend: string;
  counts: Record<Split, number>;
  quarantined: number;
  parameterCount: number;
  epochs: number;
  trainingSamplesPerSecond: number;
  manifestUri: string;
  modelUri: string;
  reportUri: string;
  stageSeconds: Record<'preprocessing' | 'training', number>;
}

export const progressQuery = defineQuery<PipelineProgress>('progress');

/** Maximum preprocessing batches in flight at once. */
const PREPROCESS_PARALLELISM = 8;

/** The end-to-end run: preprocess a dataset, then train and evaluate a model on it (the `trainModel` child workflow). */
export async function mlPipeline(input: MlPipelineInput = {}): Promise<MlPipelineResult> {
  const progress: PipelineProgress = { stage: 'validating', batchesDone: 0, batchesTotal: 0 };
  setHandler(progressQuery, () => progress);
  const config = parseWorkflowInput('mlPipeline', mlPipelineInputSchema, input);
  const enterStage = (stage: PipelineStage) => {
    progress.stage = stage;
    upsertSearchAttributes([
      { key: ML_MODEL, value: config.modelName },
      { key: ML_STAGE, value: stage },
    ]);
    return Date.now();
  };

  let started = enterStage('preprocessing');
  const listing = await cpu.listDataset(config.dataset);
  const batches = inBatches(listing.count, config.preprocess.shardSize);
  progress.batchesTotal = batches.length;
  const batchResults = await mapWithConcurrency(batches, PREPROCESS_PARALLELISM, async ({ offset, count }) => {
    const result = await cpu.preprocessBatch({ listingUri: listing.listingUri, offset, count, spec: config.preprocess });
    progress.batchesDone++;
    return result;
  });
  const dataset = await cpu.writeManifest({ source: listing.source, classes: listing.classes, spec: config.preprocess, batches: batchResults });
  const preprocessingSeconds = (Date.now() - started) / 1000;

  started = enterStage('training');
  const trained = await executeChild(trainModel, {
    workflowId: `${workflowInfo().workflowId}-train`,
    args: [{ modelName: config.modelName, manifestUri: dataset.manifestUri, model: config.model, training: config.training }],
  });
  const trainingSeconds = (Date.now() - started) / 1000;
  enterStage('done');

  return {
    modelName: config.modelName,
    testAccuracy: trained.evaluation.accuracy,
    testLoss: trained.evaluation.loss,
    backend: trained.backend,
    counts: dataset.counts,
    quarantined: dataset.quarantined,
    parameterCount: trained.parameterCount,
    epochs: trained.history.length,
    trainingSamplesPerSecond: trained.trainingSamplesPerSecond,
    manifestUri: dataset.manifestUri,
    modelUri: trained.modelUri,
    reportUri: trained.evaluation.reportUri,
    stageSeconds: { preprocessing: preprocessingSeconds, training: trainingSeconds },
  };
}
