import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import { loadModel } from '../lib/model-io';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { trainJob, TrainingDivergedError, TrainingStoppedError, type TrainJobInput, type TrainProgress } from '../lib/training/train-job';
import { tf } from '../lib/tf';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';

async function weightsOf(store: LocalArtifactStore, uri: string): Promise<number[][]> {
  const model = await loadModel(tf(), store, uri);
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}

function assertClose(a: number[][], b: number[][]): void {
  assert.equal(a.length, b.length);
  a.forEach((values, i) => values.forEach((v, j) => assert.ok(Math.abs(v - b[i]![j]!) < 1e-4, `weight ${i}[${j}]: ${v} vs ${b[i]![j]}`)));
}

describe('training job', () => {
  const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'train-job-')));
  const input = async (overrides: Partial<TrainJobInput['training']> = {}): Promise<TrainJobInput> => ({
    artifactRoot: store.root,
    manifestUri: await writeSyntheticDataset(store, 256),
    // No dropout, so an interrupted run can be compared weight for weight with an uninterrupted one.
    model: modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [16], dropout: 0 }),
    training: trainingSpecSchema.parse({ epochs: 3, batchSize: 16, learningRate: 0.01, earlyStopping: null, ...overrides }),
  });

  it('learns, and reports per-epoch validation and progress', async () => {
    const progress: TrainProgress[] = [];
    const result = await trainJob(await input(), (p) => progress.push(p));
    assert.equal(result.history.length, 3);
    assert.ok(result.history.at(-1)!.validationAccuracy! > 0.9, JSON.stringify(result.history));
    assert.ok(result.history[2]!.loss < result.history[0]!.loss);
    assert.deepEqual(result.resumes, []);
    const finished = progress.filter((p) => p.finishedEpoch).map((p) => p.finishedEpoch!.epoch);
    assert.deepEqual(finished, [1, 2, 3]);
    assert.ok(progress.every((p) => p.checkpoint === undefined || p.checkpoint.uri.startsWith('file://')));
  });

  it('stops after the current batch on SIGTERM with a checkpoint, and resuming ends where an uninterrupted run does', async () => {
    const job = await input();
    const uninterrupted = await trainJob(job, () => undefined);

    let last: TrainProgress | undefined;
    await assert.rejects(
      trainJob({ ...job, progressIntervalMs: 0 }, (p) => {
        last = p;
        if (p.epoch === 2 && p.batch === 5) process.emit('SIGTERM');
      }),
      TrainingStoppedError,
    );
    assert.equal(last!.epoch, 2);
    assert.ok(last!.batch === 5 || last!.batch === 6, `stopped at batch ${last!.batch}, within one batch of the request`);
    assert.deepEqual([last!.checkpoint!.epoch, last!.checkpoint!.batch], [2, last!.batch]);
    const resumed = await trainJob({ ...job, resumeFrom: last!.checkpoint!.uri }, () => undefined);
    assert.deepEqual(resumed.resumes, [{ epoch: 2, batch: last!.batch }]);
    assert.equal(resumed.history.length, 3);
    assertClose(await weightsOf(store, resumed.modelUri), await weightsOf(store, uninterrupted.modelUri));
  });

  it('stops early when validation loss stops improving, keeping the best epoch', async () => {
    const result = await trainJob(await input({ epochs: 30, learningRate: 0.05, earlyStopping: { monitor: 'validationLoss', patience: 1, minDelta: 0.5 } }), () => undefined);
    assert.equal(result.stoppedEarly, true);
    assert.ok(result.history.length < 30);
  });

  it('names the epoch whose weights it returns: the best one under early stopping, else the last', async () => {
    // No later epoch can beat the first by a whole point of accuracy, so epoch 1 stays the best until patience runs out.
    const stopped = await trainJob(await input({ epochs: 10, earlyStopping: { monitor: 'validationAccuracy', patience: 2, minDelta: 1 } }), () => undefined);
    assert.equal(stopped.history.length, 3);
    assert.deepEqual(stopped.bestEpoch, stopped.history[0]);
    const plain = await trainJob(await input(), () => undefined);
    assert.deepEqual(plain.bestEpoch, plain.history.at(-1));
  });

  it('fails with TrainingDivergedError when the loss is not finite', async () => {
    const job = await input();
    job.manifestUri = await writeSyntheticDataset(store, 64, { poison: true });
    await assert.rejects(trainJob(job, () => undefined), (err: Error) => err instanceof TrainingDivergedError && /diverged: loss became NaN/.test(err.message));
  });
});
