import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSettings, type WorkerLimits } from '../lib/config';
import { withinLimits } from '../lib/preprocessing/limits';
import { batchSizeFor, batchingSchema, preprocessSpecSchema } from '../lib/schemas/preprocess';

const limits: WorkerLimits = { maxInputPixels: 1000, maxFileBytes: 5000, maxBatchTensorBytes: 28 * 28 * 100, maxIdxBytes: 1 << 20, maxAugmentationCopies: 2, maxSweepTrials: 10 };
const spec = (input: Record<string, unknown>) => preprocessSpecSchema.parse(input);

function refusal(run: () => unknown): ApplicationFailure {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure);
    assert.equal(err.nonRetryable, true);
    assert.equal(err.type, 'InvalidInput');
    return err;
  }
  assert.fail('expected the input to be refused');
}

describe('worker limits', () => {
  it('are read from the environment, each with a default', () => {
    const saved = { ...process.env };
    try {
      process.env.TEMPORAL_ML_MAX_INPUT_PIXELS = '1234';
      process.env.TEMPORAL_ML_MAX_AUGMENTATION_COPIES = '3';
      const read = loadSettings().limits;
      assert.equal(read.maxInputPixels, 1234);
      assert.equal(read.maxAugmentationCopies, 3);
      assert.equal(read.maxFileBytes, 256 * 1024 * 1024);
      process.env.TEMPORAL_ML_MAX_FILE_BYTES = '-5';
      assert.throws(() => loadSettings(), /TEMPORAL_ML_MAX_FILE_BYTES=-5 is not a positive integer/);
    } finally {
      process.env = saved;
    }
  });

  it('fill in what the input leaves out and accept what lowers them', () => {
    assert.deepEqual(
      [withinLimits(spec({}), 1, limits).maxInputPixels, withinLimits(spec({}), 1, limits).maxFileBytes],
      [limits.maxInputPixels, limits.maxFileBytes],
    );
    const lowered = withinLimits(spec({ maxInputPixels: 10, maxFileBytes: 20, augmentation: { copies: 2 } }), 30, limits);
    assert.deepEqual([lowered.maxInputPixels, lowered.maxFileBytes], [10, 20]);
  });

  it('refuse an input over a ceiling, naming the field, the ceiling and its setting', () => {
    const cases: [Record<string, unknown>, number, RegExp][] = [
      [{ maxInputPixels: 1001 }, 1, /^preprocess\.maxInputPixels: 1001 is over this worker's ceiling of 1000 \(TEMPORAL_ML_MAX_INPUT_PIXELS\)/],
      [{ maxFileBytes: 5001 }, 1, /^preprocess\.maxFileBytes: 5001 is over this worker's ceiling of 5000 \(TEMPORAL_ML_MAX_FILE_BYTES\)/],
      [{ augmentation: { copies: 3 } }, 1, /^preprocess\.augmentation\.copies: 3 is over this worker's ceiling of 2 \(TEMPORAL_ML_MAX_AUGMENTATION_COPIES\)/],
      [{}, 101, /^batching\.size: 101 images take 79184 bytes .* over this worker's ceiling of 78400 \(TEMPORAL_ML_MAX_BATCH_TENSOR_BYTES\) bytes per batch; at most 100 fit/],
      [{ width: 512, height: 512 }, 1, /^preprocess: one 512x512x1 image takes 262144 bytes .*TEMPORAL_ML_MAX_BATCH_TENSOR_BYTES/],
    ];
    for (const [input, batchSize, message] of cases) assert.match(refusal(() => withinLimits(spec(input), batchSize, limits)).message, message);
  });

  it('keep the automatic batch size within the batch tensor ceiling', () => {
    const auto = batchingSchema.parse({});
    assert.equal(batchSizeFor(spec({}), auto, limits.maxBatchTensorBytes), 100);
    assert.equal(batchSizeFor(spec({}), auto), 2000);
    assert.equal(batchSizeFor(spec({ storage: 'float32' }), auto, limits.maxBatchTensorBytes), 25);
    const large = spec({ width: 1024, height: 1024, channels: 3, augmentation: { copies: 16 }, storage: 'float32' });
    assert.equal(batchSizeFor(large, auto, 1024 * 1024 * 1024), 5);
    assert.doesNotThrow(() => withinLimits(large, batchSizeFor(large, auto, 1024 * 1024 * 1024), { ...limits, maxAugmentationCopies: 16, maxBatchTensorBytes: 1024 * 1024 * 1024 }));
  });
});
