import * as ort from 'onnxruntime-node';
import { MinMaxCollector, PercentileCollector, type CalibrationMethod } from './calibration-ranges';
import { floatGraph, INPUT } from './float-graph';
import type { ActivationRanges } from './int8-graph';
import type { InferenceModel } from './layers-model';
import { encodeModel } from './onnx-proto';

export interface CalibrationSpec {
  method: CalibrationMethod;
  /** With `percentile`: the share (%) of each tensor's values kept inside its range. */
  percentile: number;
}

const BATCH = 64;

/**
 * Measures the range of the input and of every op's output while the float model runs in onnxruntime on the
 * calibration images (NHWC, `count` of them). `percentile` takes a second pass, histogramming each tensor over the
 * min-max range of the first.
 */
export async function calibrate(
  model: InferenceModel,
  images: Float32Array,
  count: number,
  spec: CalibrationSpec,
  onBatch: (imagesDone: number) => void,
): Promise<ActivationRanges> {
  const { model: graph, opOutputs } = floatGraph(model, { exposeOpOutputs: true });
  const session = await ort.InferenceSession.create(encodeModel(graph));
  try {
    const pixels = model.inputShape.reduce((a, b) => a * b, 1);
    const tensors = [INPUT, ...opOutputs];
    const pass = async (collect: (tensor: string, values: Float32Array) => void) => {
      for (let start = 0; start < count; start += BATCH) {
        const n = Math.min(BATCH, count - start);
        const batch = images.subarray(start * pixels, (start + n) * pixels);
        const outputs = await session.run({ [INPUT]: new ort.Tensor('float32', batch, [n, ...model.inputShape]) }, opOutputs);
        collect(INPUT, batch);
        for (const name of new Set(opOutputs)) collect(name, outputs[name]!.data as Float32Array);
        onBatch(start + n);
      }
    };
    const minMax = new Map(tensors.map((name) => [name, new MinMaxCollector()]));
    await pass((name, values) => minMax.get(name)!.add(values));
    let rangeOf = (name: string) => minMax.get(name)!.range();
    if (spec.method === 'percentile') {
      const histograms = new Map(tensors.map((name) => [name, new PercentileCollector(minMax.get(name)!.range())]));
      await pass((name, values) => histograms.get(name)!.add(values));
      rangeOf = (name) => histograms.get(name)!.range(spec.percentile);
    }
    return { input: rangeOf(INPUT), ops: opOutputs.map(rangeOf) };
  } finally {
    await session.release();
  }
}
