import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { runTraining } from '../activities/training';
import { artifactStore } from '../lib/artifacts';
import { settings } from '../lib/config';
import { runChildTask, WarmChildPool } from '../lib/child-task';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import type { TrainJobInput, TrainJobResult } from '../lib/training/train-job';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { temporaryDataDir } from './helpers/temporal';

const MiB = 1024 * 1024;
const trainJobModule = require.resolve('../lib/training/train-job');

describe('streamed training in a memory budget (real training processes)', () => {
  let manifestUri: string;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    // This worker's ceiling, far above what the tests use (the training processes inherit it).
    process.env.TEMPORAL_ML_TRAIN_MEMORY_BYTES = String(64 * 1024 * MiB);
    // 64x64x3 uint8 in shards of 250: 2,000 training and 500 validation images, 123 MB as float32 splits, 31 MB on disk.
    manifestUri = await writeSyntheticDataset(artifactStore(), 2000, { side: 64, channels: 3, storage: 'uint8', shardSize: 250, testCount: 0 });
  });

  const train = (training: Partial<TrainJobInput['training']>, env: NodeJS.ProcessEnv = {}) =>
    runChildTask<TrainJobInput, unknown, TrainJobResult>(
      trainJobModule,
      {
        artifacts: { kind: 'local', root: settings().artifactRoot },
        manifestUri,
        model: modelSpecSchema.parse({ architecture: 'cnn', filters: [4], hiddenUnits: [16], dropout: 0 }),
        training: trainingSpecSchema.parse({ epochs: 1, batchSize: 32, earlyStopping: null, ...training }),
      },
      { env },
    );

  it('streams when the budget cannot hold the splits, and its peak memory stays under a budget in-memory training exceeds', { timeout: 120_000 }, async () => {
    const memory = await train({ dataLoading: 'memory' });
    const loaded = memory.peakRssBytes - memory.baselineRssBytes;
    // Seven tenths of what loading the splits added: in-memory training cannot fit, streaming must. (At half, the
    // streamed peak, which varies by about 70 MiB from run to run with when collections happen, sometimes crossed it.)
    const budget = memory.baselineRssBytes + Math.round(loaded * 0.7);
    console.log(`baseline ${(memory.baselineRssBytes / MiB).toFixed(0)} MiB, in-memory peak ${(memory.peakRssBytes / MiB).toFixed(0)} MiB, budget ${(budget / MiB).toFixed(0)} MiB`);
    assert.ok(loaded > 200 * MiB, `loading the splits took ${(loaded / MiB).toFixed(0)} MiB: the dataset is meant to be large against the baseline`);

    const streamed = await train({}, { TEMPORAL_ML_TRAIN_MEMORY_BYTES: String(budget) });
    console.log(`auto: ${streamed.dataLoading}, baseline ${(streamed.baselineRssBytes / MiB).toFixed(0)} MiB, peak ${(streamed.peakRssBytes / MiB).toFixed(0)} MiB`);
    assert.equal(streamed.dataLoading, 'stream');
    assert.ok(streamed.peakRssBytes < budget, `streamed peak ${streamed.peakRssBytes} over the budget ${budget}`);
    assert.ok(memory.peakRssBytes > budget);
    assert.equal(streamed.history.length, 1);
    assert.ok(Math.abs(streamed.history[0]!.validationAccuracy! - memory.history[0]!.validationAccuracy!) <= 0.005, 'the same training either way');
  });

  it('in a warm process, trains from memory on splits it already holds, whatever the memory budget', async () => {
    const small = await writeSyntheticDataset(artifactStore(), 64, { testCount: 0 });
    // A budget of one byte: splits not yet loaded are always streamed.
    const pool = new WarmChildPool(trainJobModule, { env: { TEMPORAL_ML_TRAIN_MEMORY_BYTES: '1' }, maxIdle: 1, idleSeconds: 60 });
    const run = async (dataLoading: 'auto' | 'memory') => {
      const result = await pool.run<TrainJobInput, unknown, TrainJobResult>({
        artifacts: { kind: 'local', root: settings().artifactRoot },
        manifestUri: small,
        model: modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [8], dropout: 0 }),
        training: trainingSpecSchema.parse({ epochs: 1, batchSize: 16, earlyStopping: null, dataLoading }),
      });
      return result.dataLoading;
    };
    try {
      assert.deepEqual([await run('auto'), await run('memory'), await run('auto')], ['stream', 'memory', 'memory']);
    } finally {
      pool.idleProcesses.forEach((child) => child.kill('SIGKILL'));
    }
  });

  it('refuses a training.memoryBudgetBytes over the worker ceiling, naming the field, without retries', async () => {
    const over = 65 * 1024 * MiB;
    const input = {
      modelName: 'over-budget',
      manifestUri,
      model: modelSpecSchema.parse({}),
      training: trainingSpecSchema.parse({ memoryBudgetBytes: over }),
    };
    await assert.rejects(new MockActivityEnvironment().run(runTraining, input), (err: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.equal(err.type, 'InvalidInput');
      assert.equal(err.nonRetryable, true);
      assert.equal(err.message, `training.memoryBudgetBytes: ${over} is over this worker's ceiling of ${64 * 1024 * MiB} (TEMPORAL_ML_TRAIN_MEMORY_BYTES)`);
      return true;
    });
  });
});
