import { executeChild, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { mlPipelineInputSchema, type MlPipelineInput } from '../lib/schemas/ml-pipeline';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import type { Split } from '../lib/split';
import { parseWorkflowInput } from '../lib/validate';
import { compressModel, type CompressModelResult } from './compress-model';
import { progressQuery } from './definitions';
import { preprocessDataset } from './preprocess-dataset';
import { trainModel } from './train-model';

export type PipelineStage = 'preprocessing' | 'training' | 'compression' | 'done';

export interface PipelineProgress {
  stage: PipelineStage;
  /** IDs of the child workflows, whose own `progress` queries say more. */
  preprocessWorkflowId: string;
  trainWorkflowId: string;
  /** Null when the input skips compression. */
  compressWorkflowId: string | null;
}

export interface MlPipelineResult {
  modelName: string;
  testAccuracy: number;
  testLoss: number;
  backend: string;
  counts: Record<Split, number>;
  /** Files of the source left out of the dataset (unreadable, corrupt, duplicate, ...), by reason. */
  leftOutByReason: DatasetManifest['leftOutByReason'];
  preprocessCacheHit: boolean;
  parameterCount: number;
  epochs: number;
  trainingSamplesPerSecond: number;
  manifestUri: string;
  modelUri: string;
  reportUri: string;
  /** The compression stage's table and choice; null when the input skipped it. */
  compression: Pick<CompressModelResult, 'chosen' | 'markdown' | 'tableUri'> | null;
  stageSeconds: Record<'preprocessing' | 'training' | 'compression', number>;
}

/** The end-to-end run: preprocess a dataset, train and evaluate a model on it, then try compressing it, each as a child workflow. */
export async function mlPipeline(input: MlPipelineInput = {}): Promise<MlPipelineResult> {
  const { workflowId } = workflowInfo();
  const progress: PipelineProgress = { stage: 'preprocessing', preprocessWorkflowId: `${workflowId}-preprocess`, trainWorkflowId: `${workflowId}-train`, compressWorkflowId: null };
  setHandler(progressQuery, () => progress);
  const config = parseWorkflowInput('mlPipeline', mlPipelineInputSchema, input);
  if (config.compression) progress.compressWorkflowId = `${workflowId}-compress`;
  const enterStage = (stage: PipelineStage) => {
    progress.stage = stage;
    upsertSearchAttributes([
      { key: ML_MODEL, value: config.modelName },
      { key: ML_STAGE, value: stage },
    ]);
    return Date.now();
  };

  let started = enterStage('preprocessing');
  const dataset = await executeChild(preprocessDataset, {
    workflowId: progress.preprocessWorkflowId,
    args: [{ dataset: config.dataset, preprocess: config.preprocess, batching: config.batching }],
  });
  const preprocessingSeconds = (Date.now() - started) / 1000;

  started = enterStage('training');
  const trained = await executeChild(trainModel, {
    workflowId: progress.trainWorkflowId,
    args: [{ modelName: config.modelName, manifestUri: dataset.manifestUri, model: config.model, training: config.training }],
  });
  const trainingSeconds = (Date.now() - started) / 1000;

  let compressed: CompressModelResult | null = null;
  let compressionSeconds = 0;
  if (config.compression) {
    started = enterStage('compression');
    compressed = await executeChild(compressModel, {
      workflowId: progress.compressWorkflowId!,
      args: [{ modelName: config.modelName, modelUri: trained.modelUri, manifestUri: dataset.manifestUri, ...config.compression }],
    });
    compressionSeconds = (Date.now() - started) / 1000;
  }
  enterStage('done');

  return {
    modelName: config.modelName,
    testAccuracy: trained.evaluation.accuracy,
    testLoss: trained.evaluation.loss,
    backend: trained.backend,
    counts: dataset.counts,
    leftOutByReason: dataset.leftOutByReason,
    preprocessCacheHit: dataset.cache.hit,
    parameterCount: trained.parameterCount,
    epochs: trained.history.length,
    trainingSamplesPerSecond: trained.trainingSamplesPerSecond,
    manifestUri: dataset.manifestUri,
    modelUri: trained.modelUri,
    reportUri: trained.evaluation.reportUri,
    compression: compressed && { chosen: compressed.chosen, markdown: compressed.markdown, tableUri: compressed.tableUri },
    stageSeconds: { preprocessing: preprocessingSeconds, training: trainingSeconds, compression: compressionSeconds },
  };
}
