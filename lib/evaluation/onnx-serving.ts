import { availableParallelism } from 'node:os';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { PROBABILITIES } from '../compression/onnx/float-graph';
import { onnxParameterCounts } from './onnx-parameters';
import type { ServingModel } from './serving-model';

/**
 * How onnxruntime runs every model here. Intra-op threads: one per logical core, as tfjs-node's TensorFlow uses, so the
 * runtimes are timed on the same footing. One inter-op thread and sequential execution: these models are a chain of
 * operators with nothing to run side by side. Graph optimization `all`: constant folding, operator fusion (QDQ pairs
 * into integer kernels such as QLinearConv, which is where int8 gains its speed) and the CPU layout transformations.
 */
export const ONNX_SESSION_OPTIONS: InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  intraOpNumThreads: availableParallelism(),
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

/** An ONNX model (one `.onnx` file, NHWC float32 input, class probabilities out) served by onnxruntime-node. */
export async function onnxServingModel(model: Uint8Array, imageShape: readonly number[]): Promise<ServingModel> {
  const counts = onnxParameterCounts(model);
  const session = await InferenceSession.create(model, ONNX_SESSION_OPTIONS);
  const [input] = session.inputNames;
  // Models exported here also output their logits; any other model's first output is its probabilities.
  const output = session.outputNames.includes(PROBABILITIES) ? PROBABILITIES : session.outputNames[0];
  return {
    runtime: 'onnxruntime-node',
    ...counts,
    async predict(images, count) {
      const feed = new Tensor('float32', images, [count, ...imageShape]);
      const results = await session.run({ [input!]: feed }, [output!]);
      return results[output!]!.data as Float32Array;
    },
    dispose: () => session.release(),
  };
}
