import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Tensor } from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { decodeNpy } from '../lib/npy';
import { normalizedPixels } from '../lib/preprocessing/normalize';
import { tensorflow } from '../lib/tf';
import type { EvaluationReport } from '../activities/evaluation';
import { join } from 'node:path';
import { mlPipeline, preprocessProgressQuery, progressQuery, versionsQuery } from '../workflows';
import type { CompressionTable } from '../lib/compression/choice';
import { QUICK_VARIANTS, variantName } from '../lib/schemas/compress-model';
import { compressionVariantSchema } from '../lib/schemas/compression';
import { startTemporal, startWorkerProcess, temporaryDataDir, type WorkerProcess } from './helpers/temporal';
import { modelJsonUrl } from './helpers/local-store';

const QUICK_VARIANT_NAMES = QUICK_VARIANTS.map((variant) => variantName(compressionVariantSchema.parse(variant)));

describe('mlPipeline end to end (real Temporal server, real worker process)', () => {
  let env: TestWorkflowEnvironment;
  let worker: WorkerProcess;
  let dataDir: string;

  before(async () => {
    env = await startTemporal();
    dataDir = temporaryDataDir();
    worker = await startWorkerProcess(env.address, dataDir);
  });

  after(async () => {
    const exitCode = await worker?.stop();
    await env?.teardown();
    assert.equal(exitCode, 0, `worker should shut down cleanly on SIGTERM:\n${worker?.output()}`);
  });

  it('preprocesses real digits, trains, evaluates well above chance and exposes per-activity metrics', async () => {
    const handle = await env.client.workflow.start(mlPipeline, {
      taskQueue: 'ml-pipeline',
      workflowId: `ml-pipeline-e2e-${Date.now()}`,
      args: [{ dataset: { maxImages: 2000 }, training: { epochs: 3 }, batching: { size: 500 } }],
    });
    const result = await handle.result();
    assert.ok(result.status === 'trained');

    assert.equal(result.backend, 'tensorflow');
    assert.ok(result.testAccuracy > 0.8, `test accuracy ${result.testAccuracy} should be well above chance (0.1)`);
    assert.equal(result.counts.train + result.counts.validation + result.counts.test, 2000);
    assert.deepEqual(result.leftOutByReason, {});
    // The built-in digits are written as 8-bit grayscale PNG files of 28x28, the target size: inflated, not resized.
    assert.deepEqual(result.decoders, { tensorflow: 0, png: 2000, sharp: 0 });
    const progress = await handle.query(progressQuery);
    assert.equal(progress.stage, 'done');
    const preprocessing = await env.client.workflow.getHandle(progress.preprocessWorkflowId).query(preprocessProgressQuery);
    assert.deepEqual({ ...preprocessing, cacheHits: 0 }, { stage: 'done', batchesDone: 4, batchesTotal: 4, imagesDone: 2000, imagesTotal: 2000, leftOut: 0, cacheHits: 0 });

    const store = new LocalArtifactStore(join(dataDir, 'artifacts'));
    const manifest = await store.readJson<DatasetManifest>(result.manifestUri);
    assert.deepEqual(manifest.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(manifest.shape, [28, 28, 1]);
    const shard = manifest.shards[0]!;
    const images = decodeNpy(await store.read(shard.imagesUri));
    assert.deepEqual(images.shape, [shard.count, 28, 28, 1]);
    assert.equal(images.dtype, 'uint8');
    const firstImage = normalizedPixels(images.data.slice(0, 784) as Uint8Array, manifest.spec);
    assert.ok(firstImage.every((v) => v >= 0 && v <= 1));

    // The stock loader reads the stored model as it is.
    const model = await tensorflow().tf.loadLayersModel(modelJsonUrl(result.modelUri, store));
    assert.equal(model.countParams(), result.parameterCount);
    const prediction = model.predict(tensorflow().tf.tensor4d(firstImage, [1, 28, 28, 1])) as Tensor;
    assert.deepEqual(prediction.shape, [1, 10]);

    const report = await store.readJson<EvaluationReport>(result.reportUri);
    assert.equal(report.accuracy, result.testAccuracy);
    assert.equal(report.parameterCount, result.parameterCount);
    assert.ok(report.modelBytes > result.parameterCount * 4);
    assert.ok(report.latencyMs && report.latencyMs.single > 0 && report.latencyMs.batch > 0 && report.latencyMs.batchSize === 256);
    assert.equal(report.perClass.length, 10);
    assert.ok(report.perClass.every((c) => c.f1 > 0.5), JSON.stringify(report.perClass));
    assert.equal(report.confusion.flat().reduce((a, b) => a + b, 0), result.counts.test);
    assert.match(result.modelUri, /^artifact:\/\/sha256\//);
    assert.ok(store.pathOf(result.modelUri).startsWith(join(dataDir, 'artifacts')));

    const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
    for (const activity of ['listDataset', 'preprocessBatch', 'writeManifest', 'runTraining', 'evaluateModel']) {
      const queue = activity === 'runTraining' ? 'ml-train' : 'ml-cpu';
      const labels = `activity_type="${activity}",task_queue="${queue}"`;
      assert.match(metrics, new RegExp(`temporal_ml_activity_duration_seconds_count\\{${labels},outcome="completed"\\} [1-9]`));
      assert.match(metrics, new RegExp(`temporal_ml_activity_cpu_seconds_total\\{${labels}\\} [0-9.e-]+`));
      assert.match(metrics, new RegExp(`temporal_ml_activity_peak_rss_bytes\\{${labels}\\} [1-9]`));
      assert.match(metrics, new RegExp(`temporal_ml_activity_executions_total\\{${labels},outcome="completed"\\} [1-9]`));
    }
    assert.match(metrics, /temporal_ml_tensorflow_backend_info\{backend="tensorflow"\} 1/);
    assert.match(metrics, /temporal_ml_model_test_accuracy\{model="mnist-digits"\} 0\.[89]/);
    assert.match(metrics, /process_cpu_seconds_total/);
    assert.match(metrics, /temporal_ml_training_epoch_seconds_count\{model="mnist-digits"\} 3/);
    assert.match(metrics, /temporal_ml_checkpoint_bytes_total\{model="mnist-digits"\} [1-9]/);
    assert.match(metrics, /temporal_ml_training_samples_per_second\{model="mnist-digits",backend="tensorflow"\} [1-9]/);
    assert.match(metrics, /temporal_ml_images_preprocessed_total\{cache="miss"\} 2000/);
    assert.match(metrics, /temporal_ml_preprocess_bytes_read_total [1-9]/);
    assert.match(metrics, /temporal_ml_preprocess_batch_seconds_count\{cache="miss"\} 4/);
    assert.match(metrics, /temporal_ml_preprocess_images_per_second [1-9]/);

    // The compression stage tried the quick variants on the trained model and stored their table.
    assert.ok(result.compression, 'compressed by default');
    assert.equal(progress.compressWorkflowId, `${handle.workflowId}-compress`);
    const table = await store.readJson<CompressionTable>(result.compression.tableUri);
    assert.deepEqual(table.rows.map((row) => [row.variant, row.status]), QUICK_VARIANT_NAMES.map((name) => [name, 'done']));
    assert.equal(table.baseline.accuracy, result.testAccuracy);
    assert.equal(result.compression.chosen.variant, table.chosen.variant);
    for (const name of ['baseline', ...QUICK_VARIANT_NAMES]) assert.ok(result.compression.markdown.includes(name), name);

    // The model and its compressed variants are version 1 of the model's registry, and its first champion.
    assert.deepEqual({ ...result.registry, reason: '' }, { version: 1, promoted: true, champion: 1, reason: '' });
    assert.equal(progress.registryWorkflowId, 'model-registry-mnist-digits');
    const [registered] = await env.client.workflow.getHandle(progress.registryWorkflowId).query(versionsQuery);
    assert.equal(registered!.modelUri, result.modelUri);
    assert.deepEqual(registered!.lineage.workflowId, handle.workflowId);
    assert.deepEqual(registered!.lineage.datasetFingerprint, manifest.fingerprint);
    assert.deepEqual(
      registered!.compressed.map((variant) => [variant.name, variant.modelUri]),
      table.rows.map((row) => [row.variant, row.status === 'done' ? row.modelUri : '']),
    );

    const sdkMetrics = await (await fetch(`http://127.0.0.1:${worker.sdkMetricsPort}/metrics`)).text();
    assert.match(sdkMetrics, /temporal_activity_execution_latency/);
  });

  it('skips the compression stage when the input says "compression": null', async () => {
    const handle = await env.client.workflow.start(mlPipeline, {
      taskQueue: 'ml-pipeline',
      workflowId: `ml-pipeline-no-compression-${Date.now()}`,
      args: [{ dataset: { maxImages: 300 }, model: { architecture: 'mlp', hiddenUnits: [16] }, training: { epochs: 1 }, compression: null }],
    });
    const result = await handle.result();
    assert.ok(result.status === 'trained');
    assert.equal(result.compression, null);
    assert.equal(result.stageSeconds.compression, 0);
    const progress = await handle.query(progressQuery);
    assert.equal(progress.compressWorkflowId, null);
    await assert.rejects(env.client.workflow.getHandle(`${handle.workflowId}-compress`).describe(), { name: 'WorkflowNotFoundError' });
    // Registered with no compressed variants; 300 images are another test split than the champion's, so it is not compared.
    assert.deepEqual({ ...result.registry, reason: '' }, { version: 2, promoted: false, champion: 1, reason: '' });
    assert.match(result.registry.reason, /version 2 was tested on a different test split than champion version 1/);
    const versions = await env.client.workflow.getHandle(progress.registryWorkflowId).query(versionsQuery);
    assert.deepEqual(versions[1]!.compressed, []);
  });
});
