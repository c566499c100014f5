import type { Scalar } from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import { InvalidDatasetError, readManifest } from '../lib/datasets/manifest';
import { loadSplit } from '../lib/datasets/shards';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { loadCheckpoint } from '../lib/training/checkpoint';
import { trainJob, TrainingDivergedError, TrainingStoppedError, type TrainJobInput, type TrainProgress } from '../lib/training/train-job';
import { modelJsonUrl } from './helpers/local-store';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';

const { tf } = tensorflow();

/** Loads a stored model with TensorFlow.js' own loader. */
const loadStored = (uri: string, store: LocalArtifactStore) => tf.loadLayersModel(modelJsonUrl(uri, store));

async function weightsOf(uri: string, store: LocalArtifactStore): Promise<number[][]> {
  const model = await loadStored(uri, store);
  return model.getWeights().map((w) => Array.from(w.dataSync()));
}

function assertClose(a: number[][], b: number[][]): void {
  assert.equal(a.length, b.length);
  a.forEach((values, i) => values.forEach((v, j) => assert.ok(Math.abs(v - b[i]![j]!) < 1e-4, `weight ${i}[${j}]: ${v} vs ${b[i]![j]}`)));
}

describe('training job', () => {
  const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'train-job-')));
  const input = async (overrides: Partial<TrainJobInput['training']> = {}): Promise<TrainJobInput> => ({
    artifacts: { kind: 'local', root: store.root },
    manifestUri: await writeSyntheticDataset(store, 256),
    // No dropout, so an interrupted run can be compared weight for weight with an uninterrupted one.
    model: modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [16], dropout: 0 }),
    training: trainingSpecSchema.parse({ epochs: 3, batchSize: 16, learningRate: 0.01, earlyStopping: null, ...overrides }),
  });

  it('learns, and reports per-epoch validation and progress', async () => {
    const progress: TrainProgress[] = [];
    const job = await input();
    const started = Date.now();
    const result = await trainJob(job, (p) => progress.push(p));
    assert.equal(result.history.length, 3);
    const ends = result.history.map((e) => e.endedAt!);
    assert.ok(ends.every((end, i) => end >= (ends[i - 1] ?? started) && end <= Date.now()), `epochs ended at ${ends}, training started at ${started}`);
    assert.ok(result.history.at(-1)!.validationAccuracy! > 0.9, JSON.stringify(result.history));
    assert.ok(result.history[2]!.loss < result.history[0]!.loss);
    assert.deepEqual(result.bestEpoch, result.history.at(-1), 'without early stopping the last epoch is returned');
    assert.deepEqual(result.resumes, []);
    const finished = progress.filter((p) => p.finishedEpoch).map((p) => p.finishedEpoch!.epoch);
    assert.deepEqual(finished, [1, 2, 3]);
    assert.ok(progress.every((p) => p.checkpoint === undefined || p.checkpoint.uri.startsWith('artifact://')));
  });

  it('reports before the first batch and after each validation and checkpoint, not only between batches', async () => {
    const progress: TrainProgress[] = [];
    // One batch per epoch and a long interval: every report but the epoch ends comes from a step other than a batch.
    await trainJob({ ...(await input({ epochs: 2, batchSize: 256 })), progressIntervalMs: 60_000 }, (p) => progress.push(p));
    // [epoch, batch, epoch finished]: loaded; validated; checkpointed at the epoch end; and again for epoch 2.
    assert.deepEqual(
      progress.map((p) => [p.epoch, p.batch, p.finishedEpoch !== undefined]),
      [
        [1, 0, false],
        [1, 1, false],
        [1, 1, true],
        [2, 1, false],
        [2, 1, true],
      ],
    );
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
    assertClose(await weightsOf(resumed.modelUri, store), await weightsOf(uninterrupted.modelUri, store));
  });

  it('stops at untilEpoch with a checkpoint that continues as if never stopped, the schedule spanning training.epochs', async () => {
    const job = await input({ learningRateSchedule: { type: 'cosine', minLearningRate: 0 } });
    const uninterrupted = await trainJob(job, () => undefined);
    const first = await trainJob({ ...job, untilEpoch: 1 }, () => undefined);
    assert.deepEqual(first.history, [{ ...uninterrupted.history[0]!, seconds: first.history[0]!.seconds, endedAt: first.history[0]!.endedAt }]);
    const second = await trainJob({ ...job, untilEpoch: 2, resumeFrom: first.checkpointUri }, () => undefined);
    const rest = await trainJob({ ...job, resumeFrom: second.checkpointUri }, () => undefined);
    assert.deepEqual(rest.resumes, [
      { epoch: 2, batch: 0 },
      { epoch: 3, batch: 0 },
    ]);
    assert.deepEqual(
      rest.history.map((e) => e.learningRate),
      uninterrupted.history.map((e) => e.learningRate),
    );
    assert.deepEqual(rest.history.slice(0, 2), second.history, 'the epochs before a resume are carried, not trained again');
    assertClose(await weightsOf(rest.modelUri, store), await weightsOf(uninterrupted.modelUri, store));
  });

  it('stops after maxSteps optimizer steps, across epochs, the last one partial; shuffleSeed changes only the batch order', async () => {
    // 256 images in batches of 16: 16 steps an epoch; 20 steps are one epoch and 4 batches of the next.
    const job = { ...(await input({ epochs: 1 })), maxSteps: 20 };
    let last: TrainProgress | undefined;
    const result = await trainJob(job, (p) => (last = p));
    assert.deepEqual(result.history.map((e) => e.epoch), [1, 2]);
    assert.deepEqual([last!.epoch, last!.batch, last!.epochs], [2, 4, 2]);
    const steps = (await loadCheckpoint(tf, store, last!.checkpoint!.uri)).optimizerWeights[0]!.tensor.dataSync()[0];
    assert.equal(steps, 20, 'Adam counted 20 steps');

    const reseeded = await trainJob({ ...job, shuffleSeed: job.training.seed }, () => undefined);
    assertClose(await weightsOf(reseeded.modelUri, store), await weightsOf(result.modelUri, store));
    const reordered = await trainJob({ ...job, shuffleSeed: job.training.seed + 1 }, () => undefined);
    assert.notDeepEqual(await weightsOf(reordered.modelUri, store), await weightsOf(result.modelUri, store));
  });

  it('stops early when validation loss stops improving and returns the best epoch, weights and figures', async () => {
    const job = await input({ epochs: 30, learningRate: 0.01, earlyStopping: { monitor: 'validationLoss', patience: 1, minDelta: 0.5 } });
    let last: TrainProgress | undefined;
    const result = await trainJob(job, (p) => (last = p));
    assert.equal(result.stoppedEarly, true);
    assert.ok(result.history.length < 30);
    const lastEpoch = result.history.at(-1)!;
    assert.ok(result.bestEpoch.epoch < lastEpoch.epoch, `best epoch ${result.bestEpoch.epoch}, last ${lastEpoch.epoch}`);
    assert.deepEqual(result.bestEpoch, result.history[result.bestEpoch.epoch - 1]);

    // Not the weights training ended with (the last checkpoint holds those)...
    assert.equal(last!.checkpoint!.epoch, lastEpoch.epoch + 1);
    assert.notDeepEqual(await weightsOf(result.modelUri, store), await weightsOf(last!.checkpoint!.uri, store));
    // ...but a model that scores on the validation split exactly what the best epoch recorded.
    const validation = await loadSplit(tf, store, await readManifest(store, job.manifestUri), 'validation');
    const model = await loadStored(result.modelUri, store);
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const [loss, accuracy] = (model.evaluate(validation.images, validation.labels, { batchSize: 512 }) as Scalar[]).map((s) => s.dataSync()[0]!);
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b));
    assert.ok(close(loss!, result.bestEpoch.validationLoss!), `returned model's loss ${loss}, best epoch's ${result.bestEpoch.validationLoss}`);
    assert.ok(!close(loss!, lastEpoch.validationLoss!), `and not the last epoch's ${lastEpoch.validationLoss}`);
    assert.ok(close(accuracy!, result.bestEpoch.validationAccuracy!));
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

describe('dataset errors while training', () => {
  const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'train-job-dataset-')));
  const job = (manifestUri: string): TrainJobInput => ({
    artifacts: { kind: 'local', root: store.root },
    manifestUri,
    model: modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [4] }),
    training: trainingSpecSchema.parse({ epochs: 1 }),
  });
  const invalidDataset = (pattern: RegExp) => (err: Error) => err instanceof InvalidDatasetError && pattern.test(err.message);

  it('names a manifest that is missing, not JSON, or not a manifest', async () => {
    const missing = store.uriOf(join(store.root, 'no-such-manifest.json'));
    await assert.rejects(trainJob(job(missing), () => undefined), invalidDataset(new RegExp(`no dataset manifest at ${missing}`)));
    const notJson = (await store.putBlob(Buffer.from('{"version": 2, '), '.json')).uri;
    await assert.rejects(trainJob(job(notJson), () => undefined), invalidDataset(new RegExp(`${notJson} is not valid JSON`)));
    const manifest = JSON.parse((await store.read(await writeSyntheticDataset(store, 16))).toString());
    const noClasses = (await store.putBlob(Buffer.from(JSON.stringify({ ...manifest, classes: 'digits' })), '.json')).uri;
    await assert.rejects(trainJob(job(noClasses), () => undefined), invalidDataset(new RegExp(`${noClasses} is not a valid dataset manifest: classes: `)));
    const miscounted = (await store.putBlob(Buffer.from(JSON.stringify({ ...manifest, counts: { ...manifest.counts, train: 17 } })), '.json')).uri;
    await assert.rejects(trainJob(job(miscounted), () => undefined), invalidDataset(/counts\.train: says 17 but the shards hold 16/));
  });

  it('names a shard that is missing or not the array the manifest promises', async () => {
    const manifestUri = await writeSyntheticDataset(store, 24);
    const manifest = await readManifest(store, manifestUri);
    const shard = manifest.shards.find((s) => s.split === 'train')!;
    const swapped = { ...manifest, shards: manifest.shards.map((s) => (s === shard ? { ...s, imagesUri: s.labelsUri } : s)) };
    const swappedUri = (await store.putBlob(Buffer.from(JSON.stringify(swapped)), '.json')).uri;
    await assert.rejects(trainJob(job(swappedUri), () => undefined), invalidDataset(new RegExp(`${shard.labelsUri} holds int32 \\[24\\], the manifest says float32`)));
    rmSync(store.pathOf(shard.imagesUri));
    await assert.rejects(trainJob(job(manifestUri), () => undefined), invalidDataset(new RegExp(`the dataset shard ${shard.imagesUri} is missing`)));
  });

  it('does not take a manifest it may not read for an invalid one (EACCES is for a retry)', async () => {
    const manifestUri = await writeSyntheticDataset(store, 8);
    chmodSync(store.root, 0o755);
    chmodSync(store.pathOf(manifestUri), 0o600);
    // Root reads anything: read as an unprivileged user, so the permission error is real.
    const script = `require(${JSON.stringify(join(__dirname, '..', 'lib', 'datasets', 'manifest.js'))})
      .readManifest(new (require(${JSON.stringify(join(__dirname, '..', 'lib', 'artifacts.js'))}).LocalArtifactStore)(${JSON.stringify(store.root)}), ${JSON.stringify(manifestUri)})
      .then(() => console.log('read'), (err) => console.log(err.name, err.code));`;
    const child = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
    assert.equal(child.stdout.trim(), 'Error EACCES', child.stderr);
  });
});
