import type { LayersModel, ModelCompileArgs, Tensor } from '@tensorflow/tfjs';
import type { ArtifactStore } from '../artifacts';
import { MagnitudePruning } from '../compression/magnitude-pruning';
import type { PolynomialDecay } from '../compression/sparsity-schedule';
import { StructuredPruning } from '../compression/structured-pruning';
import { optimizerStateExtension, type OptimizerStateExtensionSpec } from '../distributed/optimizer-state';
import type { DatasetManifest } from '../datasets/manifest';
import type { TensorFlow } from '../tf';
import type { TrainingState } from './checkpoint';
import { distillationExtension, type DistillationExtensionSpec } from './distillation-extension';

/**
 * What a training job does differently from plain supervised training (pruning masks, distillation targets, ...).
 * It is declared as JSON in the job's input, since the job runs in a child process, and built there by `extensionFor`.
 */
export interface TrainingExtension {
  /** The model to train, given the one built from the spec or loaded from `initialModelUri`; not called on resume. */
  prepareModel?(model: LayersModel): Promise<LayersModel> | LayersModel;
  /** Loss and metrics to compile with (default: categorical cross-entropy, accuracy). The validation split is scored with them on its one-hot labels. */
  compileArgs?(): Pick<ModelCompileArgs, 'loss' | 'metrics'>;
  /** Called once the model is ready, fresh or restored from a checkpoint, before the first step of this attempt. */
  start?(model: LayersModel, state: TrainingState): Promise<void> | void;
  /** Training targets of one batch (default: the one-hot labels at `indices`). */
  batchTargets?(indices: Tensor, labels: Tensor): Tensor;
  /** Called after every optimizer step; `step` counts the steps done since training began, across attempts. */
  afterStep?(model: LayersModel, step: number): void;
  /** Called once training has ended, before the final model is stored; returns small details for the result. */
  finish?(model: LayersModel): Promise<Record<string, unknown>> | Record<string, unknown>;
}

export interface ExtensionContext {
  tf: TensorFlow;
  store: ArtifactStore;
  manifest: DatasetManifest;
  /** The training split: its image count. */
  train: { count: number };
  batchesPerEpoch: number;
}

/** The extensions a training job can be given, by `kind`. */
export type TrainingExtensionSpec =
  /** Gradual magnitude pruning of convolution and dense kernels along `schedule`. */
  | { kind: 'prune'; schedule: PolynomialDecay }
  /** The `fraction` of every hidden layer's filters and units with the smallest L1 norm removed before training. */
  | { kind: 'structured-prune'; fraction: number }
  | DistillationExtensionSpec
  | OptimizerStateExtensionSpec;

export async function extensionFor(context: ExtensionContext, spec: TrainingExtensionSpec | undefined): Promise<TrainingExtension> {
  if (!spec) return {};
  switch (spec.kind) {
    case 'prune':
      return new MagnitudePruning(context.tf, context.store, spec.schedule, context.batchesPerEpoch);
    case 'structured-prune':
      return new StructuredPruning(context.tf, spec.fraction);
    case 'distill':
      return distillationExtension(context, spec);
    case 'optimizer-state':
      return optimizerStateExtension(context.tf, context.store, spec);
    default:
      throw new Error(`unknown training extension "${(spec as { kind: string }).kind}"`);
  }
}
