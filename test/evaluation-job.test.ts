import type { Scalar } from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { loadSplit } from '../lib/datasets/shards';
import { accuracyOf } from '../lib/evaluation/classification';
import { WarmChildPool } from '../lib/child-task';
import { EmptySplitError, evaluateJob, type EvaluateJobInput, type EvaluationProgress, type EvaluationReport, type EvaluationSummary } from '../lib/evaluation/evaluate-job';
import { modelFromFiles } from '../lib/model-io';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import type { DataLoading } from '../lib/training/split-feed';
import { trainJob } from '../lib/training/train-job';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';

describe('evaluation job (in-process, real TensorFlow.js)', () => {
  const { tf } = tensorflow();
  const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'evaluation-job-')));
  /** 16 test images. */
  let tiny: EvaluateJobInput;
  /** 700 test images: three prediction batches, the last one partial. */
  let multiBatch: EvaluateJobInput;

  const withManifest = async (input: EvaluateJobInput, change: (manifest: DatasetManifest) => DatasetManifest): Promise<EvaluateJobInput> => {
    const manifest = change(await store.readJson<DatasetManifest>(input.manifestUri));
    return { ...input, manifestUri: (await store.putBlob(Buffer.from(JSON.stringify(manifest)), '.json')).uri };
  };

  before(async () => {
    const manifestUri = await writeSyntheticDataset(store, 64);
    const model = modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [8], dropout: 0 });
    const training = trainingSpecSchema.parse({ epochs: 2, batchSize: 16, learningRate: 0.01, earlyStopping: null });
    const { modelUri } = await trainJob({ artifacts: { kind: 'local', root: store.root }, manifestUri, model, training }, () => undefined);
    tiny = { artifacts: { kind: 'local', root: store.root }, modelUri, manifestUri, split: 'test' };
    multiBatch = { ...tiny, manifestUri: await writeSyntheticDataset(store, 64, { testCount: 700 }) };
  });

  it('leaves no tensor behind: 100 evaluations keep tf.memory().numTensors exactly flat', async () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) await evaluateJob(tiny, () => undefined);
    assert.equal(tf.memory().numTensors, before);
  });

  it('disposes the model when loading the split fails', async () => {
    const broken = await withManifest(tiny, (manifest) => ({
      ...manifest,
      shards: manifest.shards.map((shard) => (shard.split === 'test' ? { ...shard, imagesUri: store.uriOf(join(store.root, 'missing.npy')) } : shard)),
    }));
    const before = tf.memory().numTensors;
    await assert.rejects(evaluateJob(broken, () => undefined), /missing\.npy/);
    assert.equal(tf.memory().numTensors, before);
  });

  it('scores a split streamed from its shards as it scores the split loaded whole', async () => {
    const [loaded, streamed] = [await evaluateJob({ ...multiBatch, dataLoading: 'memory' }, () => undefined), await evaluateJob({ ...multiBatch, dataLoading: 'stream' }, () => undefined)];
    const [memoryReport, streamedReport] = [await store.readJson<EvaluationReport>(loaded.reportUri), await store.readJson<EvaluationReport>(streamed.reportUri)];
    assert.deepEqual(streamedReport.confusion, memoryReport.confusion);
    assert.deepEqual([loaded.dataLoading, streamed.dataLoading], ['memory', 'stream']);
    assert.equal(streamed.count, 700);
    assert.ok(Math.abs(streamed.loss - loaded.loss) < 1e-9, `${streamed.loss} vs ${loaded.loss}`);
  });

  it('agrees with tfjs model.evaluate over several prediction batches, and stores a report consistent with the summary', async () => {
    const summary = await evaluateJob(multiBatch, () => undefined);
    const report = await store.readJson<EvaluationReport>(summary.reportUri);

    const model = await modelFromFiles(tf, await store.readDirectory(multiBatch.modelUri));
    const data = await loadSplit(tf, store, await store.readJson<DatasetManifest>(multiBatch.manifestUri), 'test');
    model.compile({ optimizer: 'sgd', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const [loss, accuracy] = (model.evaluate(data.images, data.labels, { batchSize: 64 }) as Scalar[]).map((s) => s.dataSync()[0]!);
    const perClassCounts = Array.from(data.labels.sum(0).dataSync());
    tf.dispose([data.images, data.labels]);
    model.dispose();

    assert.equal(summary.count, 700);
    assert.ok(Math.abs(summary.accuracy - accuracy!) < 1e-6, `accuracy ${summary.accuracy}, tfjs says ${accuracy}`);
    assert.ok(Math.abs(summary.loss - loss!) < 1e-4, `loss ${summary.loss}, tfjs says ${loss}`);
    assert.deepEqual(
      report.confusion.map((row) => row.reduce((a, b) => a + b, 0)),
      perClassCounts,
      'each confusion row holds exactly the images of its class',
    );
    assert.equal(accuracyOf(report.confusion), summary.accuracy);
    for (const [key, value] of Object.entries(summary)) {
      if (key !== 'reportUri') assert.deepEqual(report[key as keyof EvaluationReport], value, key);
    }
    assert.deepEqual([report.modelUri, report.manifestUri, report.split, report.classes], [multiBatch.modelUri, multiBatch.manifestUri, 'test', ['0', '1', '2', '3']]);
    assert.equal(report.perClass.length, 4);
    assert.ok(summary.parameterCount > 0 && summary.modelBytes > 0);
    assert.equal(summary.latencyMs?.batchSize, 256);
    assert.ok(summary.latencyMs!.single > 0 && summary.latencyMs!.batch > 0);
  });

  it('reports each stage, every prediction batch and every timed prediction, in order', async () => {
    const progress: EvaluationProgress[] = [];
    await evaluateJob({ ...multiBatch, progressIntervalMs: 0 }, (p) => progress.push(p));
    const stages = progress.map((p) => `${p.stage} ${p.imagesDone}/${p.images}`);
    const timing = stages.filter((s) => s === 'measuring-latency 700/700');
    // 31 calls on one image and 6 on a batch, the first of each a warm-up.
    assert.equal(timing.length, 37);
    assert.deepEqual(stages, [
      'model-loaded 0/700',
      'split-loaded 0/700',
      'predicting 256/700',
      'predicting 512/700',
      'predicting 700/700',
      'predicted 700/700',
      ...timing,
      'latency-measured 700/700',
    ]);
  });

  it('leaves prediction timing out when asked, scoring the same: no latency in the summary or the report, no timing stage', async () => {
    const progress: EvaluationProgress[] = [];
    const timed = await evaluateJob(multiBatch, () => undefined);
    const untimed = await evaluateJob({ ...multiBatch, measureLatency: false, progressIntervalMs: 0 }, (p) => progress.push(p));
    assert.equal(untimed.latencyMs, null);
    assert.equal((await store.readJson<EvaluationReport>(untimed.reportUri)).latencyMs, null);
    assert.deepEqual([untimed.accuracy, untimed.loss], [timed.accuracy, timed.loss]);
    assert.deepEqual(progress.map((p) => p.stage), ['model-loaded', 'split-loaded', 'predicting', 'predicting', 'predicting', 'predicted']);
  });

  it('in a warm process, scores a split it already holds from memory, whatever the memory budget', async () => {
    // A budget of one byte: a split not yet loaded is always streamed.
    const pool = new WarmChildPool(require.resolve('../lib/evaluation/evaluate-job'), { env: { TEMPORAL_ML_TRAIN_MEMORY_BYTES: '1' }, maxIdle: 1, idleSeconds: 60 });
    const run = (dataLoading?: DataLoading) => pool.run<EvaluateJobInput, EvaluationProgress, EvaluationSummary>({ ...tiny, dataLoading });
    try {
      const loadings = [(await run()).dataLoading, (await run('memory')).dataLoading, (await run()).dataLoading];
      assert.deepEqual(loadings, ['stream', 'memory', 'memory']);
    } finally {
      pool.idleProcesses.forEach((child) => child.kill('SIGKILL'));
    }
  });

  it('refuses a split without images, naming it', async () => {
    const noValidation = await withManifest(tiny, (manifest) => ({
      ...manifest,
      counts: { ...manifest.counts, validation: 0 },
      shards: manifest.shards.filter((shard) => shard.split !== 'validation'),
    }));
    await assert.rejects(evaluateJob({ ...noValidation, split: 'validation' }, () => undefined), (err: Error) => {
      assert.ok(err instanceof EmptySplitError);
      assert.match(err.message, /no validation images/);
      return true;
    });
  });
});
