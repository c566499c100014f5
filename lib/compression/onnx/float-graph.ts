import { GraphBuilder } from './graph-builder';
import type { InferenceModel } from './layers-model';
import type { ModelProto } from './onnx-proto';

/** Graph input: images as tfjs takes them, [batch, height, width, channels] float32. */
export const INPUT = 'images';
/** Graph output: class probabilities, as the tfjs model predicts them. */
export const PROBABILITIES = 'probabilities';
/** Graph output: the scores before the final softmax (present when the model ends in one). */
export const LOGITS = 'logits';

export interface FloatGraph {
  model: ModelProto;
  /** The tensor each inference op writes, by op index. */
  opOutputs: string[];
  opCounts: Record<string, number>;
}

/**
 * The model as a float32 ONNX graph. With `exposeOpOutputs`, every op's output is a graph output too: calibration
 * reads the activations it measures from them.
 */
export function floatGraph(model: InferenceModel, options: { exposeOpOutputs?: boolean } = {}): FloatGraph {
  const g = new GraphBuilder();
  const [height, width, channels] = model.inputShape;
  let x = g.input(INPUT, ['batch', height, width, channels]);
  const opOutputs: string[] = [];
  let logits: string | undefined;
  for (const op of model.ops) {
    switch (op.kind) {
      case 'toChannelsFirst':
        x = g.node('Transpose', [x], 'nchw', { perm: [0, 3, 1, 2] });
        break;
      case 'toChannelsLast':
        x = g.node('Transpose', [x], 'nhwc', { perm: [0, 2, 3, 1] });
        break;
      case 'conv': {
        const w = g.constant(`${op.layer}/weights`, [op.outChannels, op.inChannels, ...op.kernel], op.weights);
        const b = g.constant(`${op.layer}/bias`, [op.outChannels], op.bias);
        x = g.node('Conv', [x, w, b], op.layer, { kernel_shape: op.kernel, strides: op.strides, dilations: op.dilations, pads: op.pads });
        break;
      }
      case 'maxPool':
        x = g.node('MaxPool', [x], op.layer, { kernel_shape: op.kernel, strides: op.strides, pads: op.pads });
        break;
      case 'flatten':
        x = g.node('Flatten', [x], op.layer, { axis: 1 });
        break;
      case 'dense': {
        const w = g.constant(`${op.layer}/weights`, [op.inputs, op.units], op.weights);
        const b = g.constant(`${op.layer}/bias`, [op.units], op.bias);
        x = g.node('Add', [g.node('MatMul', [x, w], `${op.layer}/matmul`), b], op.layer);
        break;
      }
      case 'relu':
        x = g.node('Relu', [x], `${op.layer}/relu`);
        break;
      case 'softmax':
        logits = x;
        x = g.node('Softmax', [x], PROBABILITIES, { axis: 1 });
        break;
    }
    opOutputs.push(x);
  }
  const classes = model.classes;
  if (x !== PROBABILITIES) x = g.node('Identity', [x], PROBABILITIES);
  g.output(PROBABILITIES, ['batch', classes]);
  if (logits) g.output(g.node('Identity', [logits], LOGITS), ['batch', classes]);
  if (options.exposeOpOutputs) for (const name of new Set(opOutputs)) if (name !== PROBABILITIES) g.output(name);
  return { model: g.build('float'), opOutputs, opCounts: g.opCounts() };
}
