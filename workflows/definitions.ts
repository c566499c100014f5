/**
 * Signals, queries and updates of every workflow, in one module that workflows, activities and clients all import,
 * so none of them imports another's workflow code to reach a definition.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ModelVersion, NewModelVersion, PromoteRequest, PromotionDecision, RegistryState, RollbackRequest } from '../lib/registry';
import type { CompressionProgress } from './compress-model';
import type { DistributedProgress } from './distributed-train';
import type { SweepStatus } from './hyperparameter-sweep';
import type { PipelineProgress } from './ml-pipeline';
import type { PreprocessProgress } from './preprocess-dataset';
import type { TrainModelProgress } from './train-model';

export type { NewModelVersion, PromoteRequest, PromotionDecision, RollbackRequest } from '../lib/registry';

export const progressQuery = defineQuery<PipelineProgress>('progress');
export const preprocessProgressQuery = defineQuery<PreprocessProgress>('progress');
export const trainingProgressQuery = defineQuery<TrainModelProgress>('progress');
export const compressionProgressQuery = defineQuery<CompressionProgress>('progress');
export const sweepStatusQuery = defineQuery<SweepStatus>('trials');
export const distributedProgressQuery = defineQuery<DistributedProgress>('progress');

/** modelRegistry: adds a version (the same run registering again gets its version back). */
export const registerVersionUpdate = defineUpdate<ModelVersion, [NewModelVersion]>('registerVersion');
/** modelRegistry: rejected (no event in history) unless the version beats the champion on the same test split by more than minImprovement, or force with a reason. */
export const promoteUpdate = defineUpdate<PromotionDecision, [PromoteRequest]>('promote');
/** modelRegistry: back to the champion before the current one; rejected when there is none. */
export const rollbackUpdate = defineUpdate<PromotionDecision, [RollbackRequest]>('rollback');
export const championQuery = defineQuery<ModelVersion | null>('champion');
export const versionsQuery = defineQuery<ModelVersion[]>('versions');
/** modelRegistry: versions, champion and every promotion and rollback. */
export const registryStateQuery = defineQuery<RegistryState>('state');
