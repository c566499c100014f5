/**
 * Signals, queries and updates of every workflow, in one module that workflows, activities and clients all import,
 * so none of them imports another's workflow code to reach a definition.
 */
import { defineQuery } from '@temporalio/workflow';
import type { CompressionProgress } from './compress-model';
import type { DistributedProgress } from './distributed-train';
import type { SweepStatus } from './hyperparameter-sweep';
import type { PipelineProgress } from './ml-pipeline';
import type { PreprocessProgress } from './preprocess-dataset';
import type { TrainModelProgress } from './train-model';

export const progressQuery = defineQuery<PipelineProgress>('progress');
export const preprocessProgressQuery = defineQuery<PreprocessProgress>('progress');
export const trainingProgressQuery = defineQuery<TrainModelProgress>('progress');
export const compressionProgressQuery = defineQuery<CompressionProgress>('progress');
export const sweepStatusQuery = defineQuery<SweepStatus>('trials');
export const distributedProgressQuery = defineQuery<DistributedProgress>('progress');
