import type { LayersModel, SymbolicTensor, Tensor, io } from '@tensorflow/tfjs';
import type { TensorFlow } from '../tf';
import type { TrainingExtension } from '../training/extension';

/**
 * Structured pruning (Li et al. 2017, "Pruning Filters for Efficient ConvNets"): the `fraction` of every hidden
 * layer's convolution filters and dense units with the smallest L1 norm go, and a smaller model of the same shape is
 * rebuilt with the surviving weights: the layer's own kernel and bias, the batch normalization after it, and the next
 * layer's input weights (through a flatten, every spatial position's surviving channels).
 */

/** Layers that carry units through unchanged, and have no weights. */
const PASS_THROUGH = new Set(['Activation', 'ReLU', 'MaxPooling2D', 'AveragePooling2D', 'Dropout']);
const WITH_UNITS = new Set(['Conv2D', 'Dense']);
const SUPPORTED = new Set([...PASS_THROUGH, ...WITH_UNITS, 'BatchNormalization', 'Flatten']);

/** A model that is not a sequential stack of the layers structured pruning knows how to shrink. */
export class UnsupportedModelError extends Error {
  override name = 'UnsupportedModelError';
}

interface LayerJson {
  class_name: string;
  config: { name: string; filters?: number; units?: number; axis?: number | number[] };
}

function layersOf(topology: io.ModelJSON['modelTopology']): LayerJson[] {
  const model = topology as { class_name?: string; config?: { layers?: LayerJson[] } };
  if (model.class_name !== 'Sequential' || !Array.isArray(model.config?.layers)) {
    throw new UnsupportedModelError(`structured pruning takes a Sequential model, not a ${model.class_name ?? 'model without a class'}`);
  }
  return model.config.layers;
}

/** The convolution and dense layers whose units are pruned: all but the last (output) dense layer. */
function hiddenLayers<L>(layers: L[], classOf: (layer: L) => string): L[] {
  const lastDense = layers.map(classOf).lastIndexOf('Dense');
  return layers.filter((layer, i) => WITH_UNITS.has(classOf(layer)) && i !== lastDense);
}

/** Throws `UnsupportedModelError` unless structured pruning can shrink the model with this `model.json` topology. */
export function checkPrunableTopology(topology: io.ModelJSON['modelTopology']): void {
  const layers = layersOf(topology);
  const unsupported = layers.filter((layer) => !SUPPORTED.has(layer.class_name));
  if (unsupported.length) {
    throw new UnsupportedModelError(`structured pruning cannot shrink layers of type ${[...new Set(unsupported.map((l) => l.class_name))].join(', ')}`);
  }
  const batchNorm = layers.find((layer) => layer.class_name === 'BatchNormalization' && layer.config.axis !== undefined && layer.config.axis !== -1);
  if (batchNorm) throw new UnsupportedModelError(`batch normalization ${batchNorm.config.name} is not over the last axis`);
}

export interface HiddenLayerUnits {
  layer: string;
  before: number;
  after: number;
}

/** Units (filters of a convolution, units of a dense layer) of every hidden layer before and after pruning. */
export function unitsBeforeAndAfter(source: io.ModelJSON['modelTopology'], pruned: io.ModelJSON['modelTopology']): HiddenLayerUnits[] {
  const width = (layer: LayerJson) => layer.config.filters ?? layer.config.units!;
  const after = new Map(layersOf(pruned).map((layer) => [layer.config.name, layer]));
  return hiddenLayers(layersOf(source), (l) => l.class_name).map((layer) => ({
    layer: layer.config.name,
    before: width(layer),
    after: width(after.get(layer.config.name)!),
  }));
}

/** Units a layer of `units` keeps when `fraction` of them go: at least one. */
export function keptUnits(units: number, fraction: number): number {
  return Math.max(1, units - Math.round(units * fraction));
}

export interface UnitSelection {
  layer: string;
  units: number;
  /** Indices of the surviving units, ascending. */
  kept: number[];
}

/** For every hidden layer, the units with the largest L1 norm (ties to the lower index) that `fraction` leaves. */
export function planStructuredPruning(tf: TensorFlow, model: LayersModel, fraction: number): UnitSelection[] {
  checkPrunableTopology(JSON.parse(model.toJSON() as string));
  return hiddenLayers(model.layers, (l) => l.getClassName()).map((layer) => {
    const kernel = layer.getWeights()[0]!;
    const norms = tf.tidy(() => tf.sum(tf.abs(kernel), [...Array(kernel.rank - 1).keys()]).dataSync());
    const order = Array.from(norms.keys()).sort((a, b) => norms[b]! - norms[a]! || a - b);
    return { layer: layer.name, units: norms.length, kept: order.slice(0, keptUnits(norms.length, fraction)).sort((a, b) => a - b) };
  });
}

/**
 * The smaller model `plan` describes, with the surviving weights copied in; before any training it computes what
 * `model` computes with the pruned units' outputs forced to zero.
 */
export async function rebuildWithUnits(tf: TensorFlow, model: LayersModel, plan: UnitSelection[]): Promise<LayersModel> {
  const keptBy = new Map(plan.map((selection) => [selection.layer, selection.kept]));
  const topology = JSON.parse(model.toJSON() as string) as { config: { layers: LayerJson[] } };
  for (const { config } of topology.config.layers) {
    const kept = keptBy.get(config.name);
    if (kept && config.filters !== undefined) config.filters = kept.length;
    else if (kept) config.units = kept.length;
  }
  const smaller = await tf.models.modelFromJSON({ modelTopology: topology as unknown as io.ModelJSON['modelTopology'] });

  // Indices of the surviving features along the last axis of the current layer's input; null: all of them.
  let channels: number[] | null = null;
  for (const layer of model.layers) {
    const className = layer.getClassName();
    const target = smaller.getLayer(layer.name);
    const select = (t: Tensor, indices: number[] | null, axis: number) => (indices ? tf.gather(t, indices, axis) : t);
    if (WITH_UNITS.has(className)) {
      const kept = keptBy.get(layer.name) ?? null;
      const weights = tf.tidy(() =>
        layer.getWeights().map((w, i) => (i === 0 ? select(select(w, channels, w.rank - 2), kept, w.rank - 1) : select(w, kept, 0)).clone()),
      );
      target.setWeights(weights);
      tf.dispose(weights);
      channels = kept;
    } else if (className === 'BatchNormalization') {
      const weights = tf.tidy(() => layer.getWeights().map((w) => select(w, channels, 0).clone()));
      target.setWeights(weights);
      tf.dispose(weights);
    } else if (className === 'Flatten') {
      const { shape } = layer.input as SymbolicTensor;
      if (channels && shape.length > 2) {
        const depth = shape.at(-1)!;
        const positions = shape.slice(1, -1).reduce((a, b) => a! * b!, 1)!;
        const kept: number[] = channels;
        channels = Array.from({ length: positions }, (_, p) => kept.map((c) => p * depth + c)).flat();
      }
    } else if (!PASS_THROUGH.has(className)) {
      throw new UnsupportedModelError(`structured pruning cannot shrink layer ${layer.name} (${className})`);
    }
  }
  return smaller;
}

/** Structured pruning as a training extension: the model to fine-tune is the rebuilt, smaller one. */
export class StructuredPruning implements TrainingExtension {
  constructor(
    private readonly tf: TensorFlow,
    private readonly fraction: number,
  ) {}

  async prepareModel(model: LayersModel): Promise<LayersModel> {
    const smaller = await rebuildWithUnits(this.tf, model, planStructuredPruning(this.tf, model, this.fraction));
    model.dispose();
    return smaller;
  }
}
