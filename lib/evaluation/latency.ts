import type { LayersModel, Tensor } from '@tensorflow/tfjs';

export interface InferenceLatency {
  /** Median milliseconds of `model.predict` on one image and on a batch of `batchSize` (up to 256). */
  single: number;
  batch: number;
  batchSize: number;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/** Median wall time of `model.predict` (until its output is read) after one warm-up call, `repeats` times. */
function timePredict(model: LayersModel, input: Tensor, repeats: number, onRun: () => void): number {
  const runs: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const started = performance.now();
    const output = model.predict(input) as Tensor;
    output.dataSync();
    output.dispose();
    if (i > 0) runs.push(performance.now() - started);
    onRun();
  }
  return median(runs);
}

/**
 * Inference latency of `model` on the first image of `images` and on a batch of its first (up to) 256; `onRun` is
 * called after each timed call.
 */
export function measureLatency(model: LayersModel, images: Tensor, onRun: () => void): InferenceLatency {
  const batchSize = Math.min(256, images.shape[0]!);
  const single = images.slice(0, 1);
  const batch = images.slice(0, batchSize);
  try {
    return { single: timePredict(model, single, 30, onRun), batch: timePredict(model, batch, 5, onRun), batchSize };
  } finally {
    single.dispose();
    batch.dispose();
  }
}
