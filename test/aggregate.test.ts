import type { LayersModel, io } from '@tensorflow/tfjs';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { aggregateWeights, mergeUpdate, type StoredModel } from '../activities/distributed';
import { ChildTaskError, runChildTask } from '../lib/child-task';
import type { AverageJobInput, AverageProgress } from '../lib/distributed/average-job';
import { saveModel } from '../lib/model-io';
import { tensorflow } from '../lib/tf';
import { temporaryDataDir } from './helpers/temporal';
import { localArtifactStore, modelJsonUrl } from './helpers/local-store';
import { waitFor } from './helpers/wait';

// Before anything reads the settings (tensorflow() does).
process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
const { tf } = tensorflow();
const store = localArtifactStore();

/**
 * A 300-input dense layer of `units` (300 x 300 + 300 values: more than one 64 Ki-value chunk) and a 2-unit output;
 * unnamed, its layers take the names TensorFlow.js numbers per process.
 */
function model(units = 300, named = true): LayersModel {
  return tf.sequential({
    layers: [tf.layers.dense({ ...(named && { name: 'hidden' }), units, inputShape: [300] }), tf.layers.dense({ ...(named && { name: 'out' }), units: 2 })],
  });
}

/** A stored model whose every weight value is `value(i)`, `i` counting values across all its weights in order. */
async function storedModel(value: (i: number) => number, units?: number, named?: boolean): Promise<string> {
  const m = model(units, named);
  let offset = 0;
  m.setWeights(
    m.getWeights().map((w) => {
      const start = offset;
      offset += w.size;
      return tf.tensor(Float32Array.from({ length: w.size }, (_, i) => value(start + i)), w.shape);
    }),
  );
  return (await saveModel(tf, store, m)).uri;
}

const valuesOf = async (uri: string) => {
  const loaded = await tf.loadLayersModel(modelJsonUrl(uri, store));
  return Float32Array.from(loaded.getWeights().flatMap((w) => Array.from(w.dataSync())));
};
const run = <I, R>(fn: (input: I) => Promise<R>, input: I, environment = new MockActivityEnvironment()) => environment.run(fn, input) as Promise<R>;
const childrenRunning = (script: string) => {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-f', script], { encoding: 'utf8' }).trim().split('\n').map(Number);
  } catch {
    return [];
  }
};
/** Every directory artifact in the store. */
const storedDirectories = () =>
  readdirSync(join(store.root, 'sha256')).flatMap((prefix) => readdirSync(join(store.root, 'sha256', prefix)).filter((name) => statSync(join(store.root, 'sha256', prefix, name)).isDirectory()));

describe('aggregating model weights (real child processes, real artifact store)', () => {
  it('FedAvg: the sample-weighted average, value by value, against a hand-computed one; stored as putDirectory stores it', async () => {
    // Samples 10, 30, 60: weights 0.1, 0.3, 0.6. Values i, 2i, -i average to 0.1i + 0.6i - 0.6i = 0.1i.
    const updates = [
      { modelUri: await storedModel((i) => i), samples: 10 },
      { modelUri: await storedModel((i) => 2 * i), samples: 30 },
      { modelUri: await storedModel((i) => -i), samples: 60 },
    ];
    const result = await run(aggregateWeights, { updates });
    const averaged = await valuesOf(result.modelUri);
    assert.equal(averaged.length, 300 * 300 + 300 + 300 * 2 + 2);
    averaged.forEach((v, i) => assert.ok(Math.abs(v - 0.1 * i) <= 1e-6 * Math.max(1, i), `value ${i}: ${v}, expected ${0.1 * i}`));
    assert.ok(result.seconds > 0);
    // Content-addressed: the same files through putDirectory land at the same URI, and a rerun changes nothing.
    assert.equal((await store.putDirectory(await store.readDirectory(result.modelUri))).uri, result.modelUri);
    assert.equal((await run(aggregateWeights, { updates })).modelUri, result.modelUri);
  });

  it('mergeUpdate: w <- (1 - a) w + a w_k', async () => {
    const globalModelUri = await storedModel(() => 1);
    const updateModelUri = await storedModel((i) => (i % 2 ? 5 : -3));
    const merged = await valuesOf((await run(mergeUpdate, { globalModelUri, updateModelUri, weight: 0.25 })).modelUri);
    // 0.75 + 0.25 * 5 = 2 for odd values, 0.75 - 0.25 * 3 = 0 for even ones.
    merged.forEach((v, i) => assert.equal(v, i % 2 ? 2 : 0, `value ${i}`));
    await assert.rejects(run(mergeUpdate, { globalModelUri, updateModelUri, weight: 1.5 }), (err: ApplicationFailure) => err.type === 'InvalidInput' && err.message.startsWith('weight: '));
  });

  it('averages one architecture built twice, whose layers TensorFlow.js numbered differently', async () => {
    const a = await storedModel(() => 1, 300, false);
    const b = await storedModel(() => 3, 300, false);
    const [specA, specB] = await Promise.all([a, b].map(async (uri) => (await store.readJson<io.ModelJSON>(`${uri}/model.json`)).weightsManifest[0]!.weights[0]!.name));
    assert.notEqual(specA, specB);
    const averaged = await valuesOf((await run(aggregateWeights, { updates: [{ modelUri: a, samples: 1 }, { modelUri: b, samples: 1 }] })).modelUri);
    assert.ok(averaged.every((v) => v === 2));
  });

  it('leaves no weight file open in the warm averaging process when a model cannot be read', async () => {
    const a = await storedModel(() => 1);
    const files = await store.readDirectory(a);
    const weightsFile = Object.keys(files).find((name) => name.endsWith('.bin'))!;
    const truncated = (await store.putDirectory({ ...files, [weightsFile]: files[weightsFile]!.subarray(0, 400) })).uri;
    await assert.rejects(run(aggregateWeights, { updates: [{ modelUri: a, samples: 1 }, { modelUri: truncated, samples: 1 }] }), (err: ApplicationFailure) => {
      assert.ok(err.message.includes('its weight files hold 400 bytes'), err.message);
      return true;
    });
    const [warm] = childrenRunning('average-job');
    assert.ok(warm, 'the averaging process answered and stays warm');
    const openInStore = readdirSync(`/proc/${warm}/fd`)
      .map((fd) => {
        try {
          return readlinkSync(`/proc/${warm}/fd/${fd}`);
        } catch {
          return '';
        }
      })
      .filter((target) => target.startsWith(store.root));
    assert.deepEqual(openInStore, []);
  });

  it('refuses models whose weight manifests differ, naming the model and the weight, without retries', async () => {
    const a = await storedModel(() => 1);
    const b = await storedModel(() => 1, 299);
    await assert.rejects(run(aggregateWeights, { updates: [{ modelUri: a, samples: 1 }, { modelUri: b, samples: 1 }] }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'InvalidInput');
      assert.equal(err.nonRetryable, true);
      assert.ok(err.message.startsWith(`updates: ${b} has other weights than ${a}: weight 0 is hidden/kernel float32 [300,299]`), err.message);
      return true;
    });
  });

  it('killed mid-write leaves no half-written model where one is read; the retry stores the right one', { timeout: 120_000 }, async () => {
    // Two models of 3 million values (12 MB), each 8 times in the average: 46 chunks of reading 16 files, so the
    // kill lands mid-write.
    const [a, b] = [await storedModel((i) => i % 7, 10_000), await storedModel((i) => -(i % 5), 10_000)];
    const models = Array.from({ length: 16 }, (_, i) => ({ modelUri: i % 2 ? b : a, weight: 1 / 16 }));
    const before = storedDirectories();
    const input: AverageJobInput = { artifacts: { kind: 'local', root: store.root }, models };
    const job = require.resolve('../lib/distributed/average-job');
    let killedAt: AverageProgress | undefined;
    await assert.rejects(
      runChildTask<AverageJobInput, AverageProgress, unknown>(job, input, {
        onProgress: (progress) => {
          if (killedAt || progress.bytes === 0 || progress.bytes === progress.of) return;
          killedAt = progress;
          for (const pid of childrenRunning('average-job')) process.kill(pid, 'SIGKILL');
        },
      }),
      (err: unknown) => err instanceof ChildTaskError && err.name === 'ChildExited' && /SIGKILL/.test(err.message),
    );
    assert.ok(killedAt, 'killed while writing');
    // What it had written lies in a scratch folder; no artifact appeared.
    const scratch = readdirSync(join(store.root, 'tmp')).map((folder) => join(store.root, 'tmp', folder, 'weights.bin'));
    assert.ok(scratch.some((file) => statSync(file).size < killedAt!.of), 'a partial weights file in the scratch folder');
    assert.deepEqual(storedDirectories(), before);

    const retried = await runChildTask<AverageJobInput, AverageProgress, { uri: string }>(job, input);
    const averaged = await valuesOf(retried.uri);
    averaged.forEach((v, i) => {
      if (v !== ((i % 7) - (i % 5)) / 2) assert.fail(`value ${i}: ${v}`);
    });
  });

  it('averages round after round in one warm process', { timeout: 120_000 }, async () => {
    const [a, b] = [await storedModel((i) => i % 3), await storedModel((i) => i % 4)];
    await run(aggregateWeights, { updates: [{ modelUri: a, samples: 1 }, { modelUri: b, samples: 1 }] });
    const [warm, ...others] = childrenRunning('average-job');
    assert.ok(warm && others.length === 0, `one averaging process, not ${[warm, ...others]}`);
    const second = await run(aggregateWeights, { updates: [{ modelUri: a, samples: 3 }, { modelUri: b, samples: 1 }] });
    assert.deepEqual(childrenRunning('average-job'), [warm]);
    (await valuesOf(second.modelUri)).forEach((v, i) => {
      if (Math.abs(v - (3 * (i % 3) + (i % 4)) / 4) > 1e-6) assert.fail(`value ${i}: ${v}`);
    });
  });

  it('heartbeats, and cancellation kills the averaging process', { timeout: 120_000 }, async () => {
    const [a, b] = [await storedModel((i) => i % 3, 10_000), await storedModel((i) => i % 4, 10_000)];
    const updates = Array.from({ length: 16 }, (_, i) => ({ modelUri: i % 2 ? b : a, samples: 1 }));
    const environment = new MockActivityEnvironment();
    const beats: AverageProgress[] = [];
    let averaging: number[] = [];
    environment.on('heartbeat', (details: AverageProgress) => {
      beats.push(details);
      if (beats.length > 1) return;
      averaging = childrenRunning('average-job');
      environment.cancel();
    });
    await assert.rejects(run(aggregateWeights, { updates }, environment) as Promise<StoredModel>, CancelledFailure);
    assert.ok(beats[0]!.bytes > 0 && beats[0]!.of === (10_000 * 300 + 10_000 + 10_000 * 2 + 2) * 4, JSON.stringify(beats[0]));
    assert.equal(averaging.length, 1);
    await waitFor('the averaging process killed', 10_000, () => (childrenRunning('average-job').includes(averaging[0]!) ? undefined : true));
  });
});
