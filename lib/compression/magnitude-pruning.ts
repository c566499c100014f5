import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import type { ArtifactStore } from '../artifacts';
import { modelFiles } from '../model-io';
import type { TensorFlow } from '../tf';
import type { TrainingState } from '../training/checkpoint';
import type { TrainingExtension } from '../training/extension';
import { encodeSparseModel, filesSize } from './sparse-encoding';
import { keptWeights, sparsityAt, updatesMasksAt, type PolynomialDecay } from './sparsity-schedule';

type LayerVariable = LayersModel['layers'][number]['trainableWeights'][number];

/** The layers whose kernels are pruned; biases and batch-norm parameters never are. */
const PRUNED_LAYERS = new Set(['Conv2D', 'Dense']);

export interface PrunedKernel {
  layer: string;
  kernel: LayerVariable;
}

/** The kernels of a model's convolution and dense layers, in layer order. */
export function prunableKernels(model: LayersModel): PrunedKernel[] {
  return model.layers
    .filter((layer) => PRUNED_LAYERS.has(layer.getClassName()))
    .map((layer) => ({ layer: layer.name, kernel: layer.trainableWeights.find((w) => w.originalName.endsWith('/kernel'))! }));
}

/**
 * 1 for the weights that stay at `sparsity` (the `keptWeights` of largest magnitude, ties going to the lower index,
 * so a layer's sparsity is exactly the target), 0 for the pruned ones.
 */
export function magnitudeMask(values: Float32Array, sparsity: number): Uint8Array {
  const kept = keptWeights(values.length, sparsity);
  const mask = new Uint8Array(values.length);
  if (kept >= values.length) return mask.fill(1);
  const order = Uint32Array.from(values.keys()).sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b);
  for (let i = 0; i < kept; i++) mask[order[i]!] = 1;
  return mask;
}

export interface LayerSparsity {
  layer: string;
  weights: number;
  zeros: number;
  sparsity: number;
}

/** How many of each pruned kernel's weights are exactly zero. */
export function kernelSparsity(kernels: PrunedKernel[]): LayerSparsity[] {
  return kernels.map(({ layer, kernel }) => {
    const values = kernel.read().dataSync();
    let zeros = 0;
    for (const value of values) if (value === 0) zeros++;
    return { layer, weights: values.length, zeros, sparsity: zeros / values.length };
  });
}

/**
 * Gradual magnitude pruning (Zhu & Gupta 2017, as TensorFlow Model Optimization's `prune_low_magnitude` does it):
 * before each step the schedule marks, every kernel's mask is recomputed at the schedule's sparsity; after every
 * optimizer step the masks are applied again, since Adam's momentum would otherwise regrow pruned weights.
 * Checkpoints hold masked weights, so a resumed run recovers its masks from their zeros and ends exactly as an
 * uninterrupted one. `finish` reports per-layer sparsity and stores the sparse encoding beside the dense model.
 */
export class MagnitudePruning implements TrainingExtension {
  private kernels: PrunedKernel[] = [];
  private masks: Tensor[] = [];

  constructor(
    private readonly tf: TensorFlow,
    private readonly store: ArtifactStore,
    private readonly schedule: PolynomialDecay,
    private readonly batchesPerEpoch: number,
  ) {}

  start(model: LayersModel, state: TrainingState): void {
    const { tf } = this;
    this.kernels = prunableKernels(model);
    this.masks = this.kernels.map(({ kernel }) => tf.tidy(() => tf.notEqual(kernel.read(), 0)));
    this.beforeStep(state.epoch * this.batchesPerEpoch + state.batch);
  }

  /** `step` optimizer steps are done: the masks for step number `step` (0-based) go on now. */
  afterStep(_model: LayersModel, step: number): void {
    this.beforeStep(step);
  }

  private beforeStep(step: number): void {
    const { tf } = this;
    if (updatesMasksAt(this.schedule, step)) {
      const sparsity = sparsityAt(this.schedule, step);
      this.masks = this.kernels.map(({ kernel }, i) => {
        this.masks[i]!.dispose();
        const values = kernel.read();
        return tf.tensor(magnitudeMask(values.dataSync() as Float32Array, sparsity), values.shape, 'bool');
      });
    }
    // `where`, not a product: a pruned weight is +0, never -0, so its four bytes are zero in the stored file.
    tf.tidy(() => this.kernels.forEach(({ kernel }, i) => kernel.write(tf.where(this.masks[i]!, kernel.read(), tf.zerosLike(kernel.read())))));
  }

  async finish(model: LayersModel): Promise<Record<string, unknown>> {
    const layers = kernelSparsity(this.kernels);
    const weights = layers.reduce((sum, layer) => sum + layer.weights, 0);
    const zeros = layers.reduce((sum, layer) => sum + layer.zeros, 0);
    const dense = await modelFiles(this.tf, model);
    const sparse = encodeSparseModel(dense);
    const stored = await this.store.putDirectory(sparse);
    this.tf.dispose(this.masks);
    return {
      schedule: this.schedule,
      sparsity: zeros / weights,
      layers,
      dense: filesSize(dense),
      sparse: { uri: stored.uri, ...filesSize(sparse) },
    };
  }
}
