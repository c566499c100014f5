import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { loadSettings, tensorflowThreadsEnv } from '../lib/config';
import { runChildTask } from '../lib/child-task';

const VARIABLES = ['TEMPORAL_ML_TRAIN_SLOTS', 'TEMPORAL_ML_TRAIN_INTRA_OP_THREADS', 'TEMPORAL_ML_TRAIN_INTER_OP_THREADS'];

describe('training slots and TensorFlow threads per trainer', () => {
  afterEach(() => VARIABLES.forEach((name) => delete process.env[name]));

  it('are read from the environment: one slot and TensorFlow’s own thread counts by default', () => {
    assert.deepEqual(loadSettings().training, { slots: 1, intraOpThreads: null, interOpThreads: null });
    assert.deepEqual(tensorflowThreadsEnv(loadSettings().training), {});
    Object.assign(process.env, { TEMPORAL_ML_TRAIN_SLOTS: '4', TEMPORAL_ML_TRAIN_INTRA_OP_THREADS: '2', TEMPORAL_ML_TRAIN_INTER_OP_THREADS: '1' });
    assert.deepEqual(loadSettings().training, { slots: 4, intraOpThreads: 2, interOpThreads: 1 });
    assert.deepEqual(tensorflowThreadsEnv(loadSettings().training), { TF_NUM_INTRAOP_THREADS: '2', TF_NUM_INTEROP_THREADS: '1' });
    process.env.TEMPORAL_ML_TRAIN_SLOTS = '0';
    assert.throws(() => loadSettings(), /TEMPORAL_ML_TRAIN_SLOTS=0 is not a positive integer/);
  });

  it('take effect in a child process: native TensorFlow starts as many pool threads as configured', { timeout: 120_000 }, async () => {
    const threadsWith = (intraOpThreads: number, interOpThreads: number) =>
      runChildTask<undefined, never, number>(join(__dirname, 'helpers', 'tensorflow-threads-child.js'), undefined, {
        env: tensorflowThreadsEnv({ slots: 1, intraOpThreads, interOpThreads }),
      });
    const [few, many] = [await threadsWith(1, 1), await threadsWith(4, 3)];
    assert.equal(many - few, 3 + 2, `threads: ${few} with 1 + 1, ${many} with 4 + 3`);
  });
});
