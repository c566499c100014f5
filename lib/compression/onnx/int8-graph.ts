import type { Range } from './calibration-ranges';
import { INPUT, LOGITS, PROBABILITIES } from './float-graph';
import { GraphBuilder } from './graph-builder';
import type { InferenceModel, InferenceOp } from './layers-model';
import type { ModelProto } from './onnx-proto';
import { activationParams, quantizeBias, quantizePerChannel, zeroPointArray, type ActivationType, type AffineParams } from './quantization';

/**
 * `qdq`: float ops between QuantizeLinear/DequantizeLinear pairs, which onnxruntime's graph optimizer fuses into its
 * integer kernels; `qoperator`: the integer ops (QLinearConv, QGemm, ...) written directly.
 */
export type QuantizedFormat = 'qdq' | 'qoperator';

export interface ActivationRanges {
  /** The images fed to the model. */
  input: Range;
  /** Each inference op's output, by op index. */
  ops: Range[];
}

export interface Int8GraphOptions {
  activations: ActivationType;
  format: QuantizedFormat;
}

interface Quantization extends AffineParams {
  scaleName: string;
  zeroPointName: string;
}

/** The tensor flowing between ops: in `qoperator` graphs an integer tensor with its quantization, or a float one. */
interface Flow {
  name: string;
  quantization?: Quantization;
}

const CONTRIB = 'com.microsoft';
/** Ops that only move values (layout, pooling): their output keeps their input's quantization. */
const MOVES_VALUES = new Set<InferenceOp['kind']>(['toChannelsFirst', 'toChannelsLast', 'maxPool', 'flatten']);

/**
 * The model with int8 weights (symmetric, per output channel), int32 biases and 8-bit activations quantized per tensor
 * with the calibrated ranges. A relu right after a convolution or dense layer disappears into the layer's output
 * quantization: its range starts at 0, so quantizing clips the negatives exactly as relu would. The last dense layer
 * writes float scores, so the softmax sees unrounded logits.
 */
export function int8Graph(model: InferenceModel, ranges: ActivationRanges, options: Int8GraphOptions): { model: ModelProto; opCounts: Record<string, number> } {
  const g = new GraphBuilder();
  const qdq = options.format === 'qdq';
  const [height, width, channels] = model.inputShape;
  const quantization = (range: Range, base: string): Quantization => {
    const params = activationParams(range, options.activations);
    return {
      ...params,
      scaleName: g.constant(`${base}/scale`, [], Float32Array.of(params.scale)),
      zeroPointName: g.constant(`${base}/zero_point`, [], zeroPointArray(options.activations, params.zeroPoint)),
    };
  };
  const quantize = (name: string, q: Quantization): string => g.node('QuantizeLinear', [name, q.scaleName, q.zeroPointName], `${name}/quantized`);
  const dequantize = (name: string, q: Quantization): string => g.node('DequantizeLinear', [name, q.scaleName, q.zeroPointName], `${name}/dequantized`);
  /** In QDQ graphs every quantized tensor is written as a Q/DQ pair; in QOperator graphs the integer tensor flows on. */
  const quantized = (name: string, q: Quantization): Flow => (qdq ? { name: dequantize(quantize(name, q), q), quantization: q } : { name: quantize(name, q), quantization: q });
  const toFloat = (flow: Flow): string => (!qdq && flow.quantization ? dequantize(flow.name, flow.quantization) : flow.name);

  let flow = quantized(g.input(INPUT, ['batch', height, width, channels]), quantization(ranges.input, 'input'));
  let logits: string | undefined;
  for (let i = 0; i < model.ops.length; i++) {
    const op = model.ops[i]!;
    const reluFollows = model.ops[i + 1]?.kind === 'relu';
    const outputRange = () => ranges.ops[reluFollows ? ++i : i]!;
    if (MOVES_VALUES.has(op.kind)) {
      const output = moveValues(g, op, flow.name);
      flow = qdq && flow.quantization ? quantized(output, flow.quantization) : { ...flow, name: output };
    } else if (op.kind === 'conv' || op.kind === 'dense') {
      // Every tensor is quantized up to the last dense layer, the only one that writes float.
      const input = flow.quantization!;
      const isLast = op.kind === 'dense' && model.ops.slice(i + 1).every((next) => next.kind === 'softmax');
      const output = isLast ? undefined : quantization(outputRange(), op.layer);
      const name = op.kind === 'conv' ? convolution(g, op, flow.name, input, output, options) : dense(g, op, flow.name, input, output, options);
      flow = output ? (qdq ? quantized(name, output) : { name, quantization: output }) : { name };
    } else if (op.kind === 'relu') {
      const name = g.node('Relu', [toFloat(flow)], `${op.layer}/relu`);
      flow = quantized(name, quantization(ranges.ops[i]!, `${op.layer}/relu`));
    } else {
      logits = toFloat(flow);
      flow = { name: g.node('Softmax', [logits], PROBABILITIES, { axis: 1 }) };
    }
  }
  let output = toFloat(flow);
  if (output !== PROBABILITIES) output = g.node('Identity', [output], PROBABILITIES);
  g.output(output, ['batch', model.classes]);
  if (logits) g.output(g.node('Identity', [logits], LOGITS), ['batch', model.classes]);
  return { model: g.build(`int8-${options.format}`), opCounts: g.opCounts() };
}

function moveValues(g: GraphBuilder, op: InferenceOp, input: string): string {
  switch (op.kind) {
    case 'toChannelsFirst':
      return g.node('Transpose', [input], 'nchw', { perm: [0, 3, 1, 2] });
    case 'toChannelsLast':
      return g.node('Transpose', [input], 'nhwc', { perm: [0, 2, 3, 1] });
    case 'maxPool':
      return g.node('MaxPool', [input], op.layer, { kernel_shape: op.kernel, strides: op.strides, pads: op.pads });
    case 'flatten':
      return g.node('Flatten', [input], op.layer, { axis: 1 });
    default:
      throw new Error(`${op.kind} is not a layout or pooling op`);
  }
}

/** Weights and bias as integer constants; in QDQ graphs read through DequantizeLinear, per channel along `axis`. */
function integerParameters(g: GraphBuilder, op: Extract<InferenceOp, { kind: 'conv' | 'dense' }>, input: Quantization, qdq: boolean) {
  const channels = op.kind === 'conv' ? op.outChannels : op.units;
  const dims = op.kind === 'conv' ? [op.outChannels, op.inChannels, ...op.kernel] : [op.inputs, op.units];
  const weights = quantizePerChannel(op.weights, channels, op.kind === 'conv' ? 'rows' : 'columns');
  const bias = quantizeBias(op.bias, input.scale, weights.scales);
  const w = {
    values: g.constant(`${op.layer}/weights`, dims, weights.values),
    scales: g.constant(`${op.layer}/weights/scales`, [channels], weights.scales),
    zeroPoints: g.constant(`${op.layer}/weights/zero_points`, [channels], new Int8Array(channels)),
  };
  const b = g.constant(`${op.layer}/bias`, [channels], bias.values);
  if (!qdq) return { ...w, bias: b };
  const axis = op.kind === 'conv' ? 0 : 1;
  return {
    ...w,
    weightsFloat: g.node('DequantizeLinear', [w.values, w.scales, w.zeroPoints], `${op.layer}/weights/dequantized`, { axis }),
    biasFloat: g.node(
      'DequantizeLinear',
      [b, g.constant(`${op.layer}/bias/scales`, [channels], bias.scales), g.constant(`${op.layer}/bias/zero_points`, [channels], new Int32Array(channels))],
      `${op.layer}/bias/dequantized`,
      { axis: 0 },
    ),
  };
}

function convolution(g: GraphBuilder, op: Extract<InferenceOp, { kind: 'conv' }>, x: string, input: Quantization, output: Quantization | undefined, options: Int8GraphOptions): string {
  const p = integerParameters(g, op, input, options.format === 'qdq');
  const attributes = { kernel_shape: op.kernel, strides: op.strides, dilations: op.dilations, pads: op.pads };
  if ('weightsFloat' in p) return g.node('Conv', [x, p.weightsFloat, p.biasFloat], op.layer, attributes);
  if (!output) throw new Error(`convolution ${op.layer} needs an output quantization`);
  return g.node('QLinearConv', [x, input.scaleName, input.zeroPointName, p.values, p.scales, p.zeroPoints, output.scaleName, output.zeroPointName, p.bias], op.layer, attributes);
}

function dense(g: GraphBuilder, op: Extract<InferenceOp, { kind: 'dense' }>, x: string, input: Quantization, output: Quantization | undefined, options: Int8GraphOptions): string {
  const p = integerParameters(g, op, input, options.format === 'qdq');
  if ('weightsFloat' in p) return g.node('Gemm', [x, p.weightsFloat, p.biasFloat], op.layer);
  const outputs = output ? [output.scaleName, output.zeroPointName] : [];
  // QGemm without an output scale writes float32.
  return g.node('QGemm', [x, input.scaleName, input.zeroPointName, p.values, p.scales, p.zeroPoints, p.bias, ...outputs], op.layer, {}, CONTRIB);
}
