import type { io } from '@tensorflow/tfjs';
import type { TensorFlow } from '../../tf';

/**
 * A TensorFlow.js layers model read as the plain sequence of inference operations ONNX graphs are written from:
 * batch normalization folded into the convolution or dense layer before it, dropout gone (identity at inference),
 * and the layout changes tfjs leaves implicit made explicit (NHWC images, NCHW convolutions).
 */
export type InferenceOp =
  | { kind: 'toChannelsFirst' }
  | { kind: 'toChannelsLast' }
  | {
      kind: 'conv';
      layer: string;
      /** [outChannels, inChannels, kernelHeight, kernelWidth], ONNX's layout. */
      weights: Float32Array;
      bias: Float32Array;
      inChannels: number;
      outChannels: number;
      kernel: [number, number];
      strides: [number, number];
      dilations: [number, number];
      /** [top, left, bottom, right]. */
      pads: [number, number, number, number];
    }
  | { kind: 'maxPool'; layer: string; kernel: [number, number]; strides: [number, number]; pads: [number, number, number, number] }
  | { kind: 'flatten'; layer: string }
  /** `weights` is [inputs, units], row-major. */
  | { kind: 'dense'; layer: string; weights: Float32Array; bias: Float32Array; inputs: number; units: number }
  | { kind: 'relu'; layer: string }
  | { kind: 'softmax'; layer: string };

export interface InferenceModel {
  /** [height, width, channels] of one input image. */
  inputShape: [number, number, number];
  classes: number;
  ops: InferenceOp[];
}

/** A layer (or layer setting) the exporter has no ONNX translation for: exporting this model again cannot succeed. */
export class UnsupportedLayerError extends Error {
  override name = 'UnsupportedLayerError';
}

interface LayerJson {
  class_name: string;
  config: Record<string, unknown> & { name: string };
}

interface ModelJson {
  format?: string;
  modelTopology?: { class_name?: string; config?: { layers?: LayerJson[] } | LayerJson[]; model_config?: ModelJson['modelTopology'] };
  weightsManifest?: io.WeightsManifestConfig;
}

const pair = (value: unknown, fallback: [number, number]): [number, number] => {
  if (typeof value === 'number') return [value, value];
  return Array.isArray(value) && value.length === 2 ? [Number(value[0]), Number(value[1])] : fallback;
};

/** Padding as TensorFlow computes it; `same` puts the odd pixel at the end (bottom, right). */
function padding(mode: unknown, size: number, kernel: number, stride: number, dilation: number): [number, number, number] {
  const extent = (kernel - 1) * dilation + 1;
  if (mode === 'valid') return [0, 0, Math.floor((size - extent) / stride) + 1];
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + extent - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2), out];
}

/**
 * Reads a stored layers model (`model.json` and its weight files, any tfjs weight encoding, quantized ones included)
 * into inference operations. Throws UnsupportedLayerError naming the first layer it cannot translate.
 */
export function readLayersModel(tf: TensorFlow, files: Record<string, Uint8Array>): InferenceModel {
  const modelJson = JSON.parse(Buffer.from(files['model.json'] ?? new Uint8Array()).toString('utf8')) as ModelJson;
  const topology = modelJson.modelTopology?.model_config ?? modelJson.modelTopology;
  const config = topology?.config;
  const layers = Array.isArray(config) ? config : config?.layers;
  if (topology?.class_name !== 'Sequential' || !layers || !modelJson.weightsManifest) {
    throw new UnsupportedLayerError(`the model is not a sequential TensorFlow.js layers model (class ${topology?.class_name ?? 'none'})`);
  }
  const weights = decodeWeights(tf, files, modelJson.weightsManifest);
  const weight = (layer: LayerJson, name: string): Float32Array => {
    const value = weights.get(`${layer.config.name}/${name}`);
    if (!value) throw new UnsupportedLayerError(`layer ${layer.config.name} has no weight ${name} in the weights manifest`);
    return value;
  };

  const batchShape = layers[0]?.config.batch_input_shape as (number | null)[] | undefined;
  if (batchShape?.length !== 4) throw new UnsupportedLayerError(`the first layer ${layers[0]?.config.name} must declare an image input [height, width, channels]`);
  const inputShape = batchShape.slice(1) as [number, number, number];
  /** The current tensor's shape without the batch: [height, width, channels] or [features]. */
  let shape: number[] = [...inputShape];
  let channelsFirst = false;
  const ops: InferenceOp[] = [];
  const unsupported = (layer: LayerJson, what: string) => new UnsupportedLayerError(`layer ${layer.config.name} (${layer.class_name}): ${what} is not supported`);
  const toChannelsFirst = () => {
    if (!channelsFirst) ops.push({ kind: 'toChannelsFirst' });
    channelsFirst = true;
  };
  const activation = (layer: LayerJson, name: unknown) => {
    if (name === 'relu') ops.push({ kind: 'relu', layer: layer.config.name });
    else if (name === 'softmax') ops.push({ kind: 'softmax', layer: layer.config.name });
    else if (name !== 'linear' && name !== undefined && name !== null) throw unsupported(layer, `activation ${String(name)}`);
  };
  const imageLayer = (layer: LayerJson) => {
    if (shape.length !== 3) throw unsupported(layer, 'a non-image input');
    if ((layer.config.data_format ?? 'channels_last') !== 'channels_last') throw unsupported(layer, `data_format ${String(layer.config.data_format)}`);
    toChannelsFirst();
  };

  for (const layer of layers) {
    const c = layer.config;
    switch (layer.class_name) {
      case 'InputLayer':
      case 'Dropout':
        break;
      case 'Conv2D': {
        imageLayer(layer);
        const [height, width, inChannels] = shape as [number, number, number];
        const kernel = pair(c.kernel_size, [1, 1]);
        const strides = pair(c.strides, [1, 1]);
        const dilations = pair(c.dilation_rate, [1, 1]);
        const outChannels = Number(c.filters);
        const [top, bottom, outHeight] = padding(c.padding, height, kernel[0], strides[0], dilations[0]);
        const [left, right, outWidth] = padding(c.padding, width, kernel[1], strides[1], dilations[1]);
        ops.push({
          kind: 'conv',
          layer: c.name,
          weights: toOutInHw(weight(layer, 'kernel'), kernel, inChannels, outChannels),
          bias: c.use_bias === false ? new Float32Array(outChannels) : weight(layer, 'bias'),
          inChannels,
          outChannels,
          kernel,
          strides,
          dilations,
          pads: [top, left, bottom, right],
        });
        shape = [outHeight, outWidth, outChannels];
        activation(layer, c.activation);
        break;
      }
      case 'MaxPooling2D': {
        imageLayer(layer);
        const [height, width, channels] = shape as [number, number, number];
        const kernel = pair(c.pool_size, [2, 2]);
        const strides = pair(c.strides, kernel);
        const [top, bottom, outHeight] = padding(c.padding, height, kernel[0], strides[0], 1);
        const [left, right, outWidth] = padding(c.padding, width, kernel[1], strides[1], 1);
        ops.push({ kind: 'maxPool', layer: c.name, kernel, strides, pads: [top, left, bottom, right] });
        shape = [outHeight, outWidth, channels];
        break;
      }
      case 'BatchNormalization': {
        const previous = ops.at(-1);
        if (previous?.kind !== 'conv' && previous?.kind !== 'dense') throw unsupported(layer, 'batch normalization not right after a convolution or dense layer');
        if (c.axis !== -1 && c.axis !== shape.length) throw unsupported(layer, `axis ${String(c.axis)}`);
        const channels = shape.at(-1)!;
        foldBatchNorm(previous, {
          gamma: c.scale === false ? new Float32Array(channels).fill(1) : weight(layer, 'gamma'),
          beta: c.center === false ? new Float32Array(channels) : weight(layer, 'beta'),
          mean: weight(layer, 'moving_mean'),
          variance: weight(layer, 'moving_variance'),
          epsilon: Number(c.epsilon ?? 1e-3),
        });
        break;
      }
      case 'Activation':
        activation(layer, c.activation);
        break;
      case 'ReLU':
        if (c.max_value !== null && c.max_value !== undefined) throw unsupported(layer, 'max_value');
        activation(layer, 'relu');
        break;
      case 'Softmax':
        activation(layer, 'softmax');
        break;
      case 'Flatten':
        if (channelsFirst) ops.push({ kind: 'toChannelsLast' });
        channelsFirst = false;
        ops.push({ kind: 'flatten', layer: c.name });
        shape = [shape.reduce((a, b) => a * b, 1)];
        break;
      case 'Dense': {
        if (shape.length !== 1) throw unsupported(layer, 'a dense layer on a tensor that is not flat');
        const units = Number(c.units);
        ops.push({
          kind: 'dense',
          layer: c.name,
          weights: weight(layer, 'kernel'),
          bias: c.use_bias === false ? new Float32Array(units) : weight(layer, 'bias'),
          inputs: shape[0]!,
          units,
        });
        shape = [units];
        activation(layer, c.activation);
        break;
      }
      default:
        throw unsupported(layer, `the layer type ${layer.class_name}`);
    }
  }
  if (shape.length !== 1) throw new UnsupportedLayerError(`the model's output is not a vector of class scores (shape [${shape}])`);
  return { inputShape, classes: shape[0]!, ops };
}

/** Every weight as float32, by name, decoded by tfjs itself (float32, float16, affine uint8/uint16). */
function decodeWeights(tf: TensorFlow, files: Record<string, Uint8Array>, manifest: io.WeightsManifestConfig): Map<string, Float32Array> {
  const specs = manifest.flatMap((group) => group.weights);
  const data = Buffer.concat(
    manifest.flatMap((group) =>
      group.paths.map((path) => {
        const file = files[path];
        if (!file) throw new UnsupportedLayerError(`the weights file ${path} named in model.json is missing`);
        return file;
      }),
    ),
  );
  const tensors = tf.io.decodeWeights(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength), specs);
  const weights = new Map<string, Float32Array>();
  for (const [name, tensor] of Object.entries(tensors)) {
    weights.set(name, Float32Array.from(tensor.dataSync() as Float32Array));
    tensor.dispose();
  }
  return weights;
}

/** tfjs kernel [kh, kw, in, out] to ONNX [out, in, kh, kw]. */
function toOutInHw(kernel: Float32Array, [kh, kw]: [number, number], inChannels: number, outChannels: number): Float32Array {
  const out = new Float32Array(kernel.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < inChannels; i++)
        for (let o = 0; o < outChannels; o++) out[((o * inChannels + i) * kh + y) * kw + x] = kernel[((y * kw + x) * inChannels + i) * outChannels + o]!;
  return out;
}

/** y = gamma (x - mean) / sqrt(variance + epsilon) + beta, folded into the weights and bias of the op that produced x. */
function foldBatchNorm(
  op: Extract<InferenceOp, { kind: 'conv' | 'dense' }>,
  bn: { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array; epsilon: number },
): void {
  const channels = op.bias.length;
  const scale = bn.gamma.map((g, c) => g / Math.sqrt(bn.variance[c]! + bn.epsilon));
  op.bias = op.bias.map((b, c) => (b - bn.mean[c]!) * scale[c]! + bn.beta[c]!);
  // Conv weights are [out, ...]: output channel c is a contiguous block; dense weights are [in, out]: column c.
  op.weights = op.weights.map((w, index) => w * scale[op.kind === 'conv' ? Math.floor(index / (op.weights.length / channels)) : index % channels]!);
}
