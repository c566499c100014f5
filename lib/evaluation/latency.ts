import type { ServingModel } from './serving-model';
import { median } from '../median';

export interface InferenceLatency {
  /** Median milliseconds of a prediction on one image and on a batch of `batchSize` (up to 256), output read. */
  single: number;
  batch: number;
  batchSize: number;
}

/** Median wall time of `model.predict` on `count` images after one warm-up call, `repeats` times. */
async function timePredict(model: ServingModel, images: Float32Array, count: number, repeats: number, onRun: () => void): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const started = performance.now();
    await model.predict(images, count);
    if (i > 0) runs.push(performance.now() - started);
    onRun();
  }
  return median(runs);
}

/**
 * Inference latency of `model` on the first of `count` images (NHWC in `images`) and on a batch of the first (up to)
 * 256; `onRun` is called after each timed call.
 */
export async function measureLatency(model: ServingModel, images: Float32Array, count: number, onRun: () => void): Promise<InferenceLatency> {
  const imageSize = images.length / count;
  const batchSize = Math.min(256, count);
  return {
    single: await timePredict(model, images.subarray(0, imageSize), 1, 30, onRun),
    batch: await timePredict(model, images.subarray(0, batchSize * imageSize), batchSize, 5, onRun),
    batchSize,
  };
}
