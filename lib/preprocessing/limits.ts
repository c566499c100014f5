import { WORKER_LIMITS, type WorkerLimits } from '../config';
import { tensorBytesPerImage, type PreprocessSpec } from '../schemas/preprocess';
import { invalidInput } from '../validate';

/** A spec with the limits its input left to the worker filled in: what a batch runs with, and part of its cache key. */
export type LimitedSpec = PreprocessSpec & { maxInputPixels: number; maxFileBytes: number };

const ceiling = (limits: WorkerLimits, limit: keyof WorkerLimits) => `this worker's ceiling of ${limits[limit]} (${WORKER_LIMITS[limit].variable})`;

/**
 * Checks a spec, and batches of `batchSize` images of it, against this worker's ceilings, and fills in the limits the
 * input left out. An input may lower a ceiling, never raise it: one over a ceiling is a user error that names the field
 * and the ceiling, without retries.
 */
export function withinLimits(spec: PreprocessSpec, batchSize: number, limits: WorkerLimits): LimitedSpec {
  for (const field of ['maxInputPixels', 'maxFileBytes'] as const) {
    const value = spec[field];
    if (value !== null && value > limits[field]) throw invalidInput(`preprocess.${field}`, `${value} is over ${ceiling(limits, field)}`);
  }
  const copies = spec.augmentation?.copies ?? 0;
  if (copies > limits.maxAugmentationCopies) {
    throw invalidInput('preprocess.augmentation.copies', `${copies} is over ${ceiling(limits, 'maxAugmentationCopies')}`);
  }
  const perImage = tensorBytesPerImage(spec);
  if (perImage > limits.maxBatchTensorBytes) {
    const shape = `${spec.width}x${spec.height}x${spec.channels}${copies ? ` with ${copies} augmented copies` : ''}`;
    throw invalidInput('preprocess', `one ${shape} image takes ${perImage} bytes of float32 tensors, over ${ceiling(limits, 'maxBatchTensorBytes')} bytes per batch`);
  }
  if (batchSize * perImage > limits.maxBatchTensorBytes) {
    const fits = Math.floor(limits.maxBatchTensorBytes / perImage);
    throw invalidInput(
      'batching.size',
      `${batchSize} images take ${batchSize * perImage} bytes of float32 tensors, over ${ceiling(limits, 'maxBatchTensorBytes')} bytes per batch; at most ${fits} fit`,
    );
  }
  return { ...spec, maxInputPixels: spec.maxInputPixels ?? limits.maxInputPixels, maxFileBytes: spec.maxFileBytes ?? limits.maxFileBytes };
}
