import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure, RetryState } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command, UploadPartCommand } from '@aws-sdk/client-s3';
import { artifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { decodeNpy } from '../lib/npy';
import type { PreprocessDatasetInput } from '../lib/schemas/preprocess-dataset';
import type { S3ArtifactStore } from '../lib/s3-artifacts';
import { tensorflow } from '../lib/tf';
import { mlPipeline, preprocessDataset, preprocessProgressQuery, trainModel, trainingProgressQuery } from '../workflows';
import { diskBytesUnder } from './helpers/disk-usage';
import { startTestObjectStore } from './helpers/object-store';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { runWorkersInProcess, startTemporal, startWorkerProcess, temporaryDataDir, type InProcessWorkers, type WorkerProcess } from './helpers/temporal';

const cli = (args: string[], env: NodeJS.ProcessEnv) => promisify(execFile)(process.execPath, [join(__dirname, '..', 'cli', 'main.js'), ...args], { env: { ...process.env, ...env } });

/** Files under `root` whose exact bytes an earlier file already has. */
function duplicateFiles(root: string): number {
  const files = readdirSync(root, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
  const hashes = new Set(files.map((entry) => createHash('sha256').update(readFileSync(join(entry.parentPath, entry.name))).digest('hex')));
  return files.length - hashes.size;
}

/** A folder of the first `perClass` digits of each class (copies: `dataset upload` reads files, not links). */
function digitsFolder(perClass: number): string {
  const source = join(temporaryDataDir(), 'builtin', 'mnist-digits');
  const folder = mkdtempSync(join(tmpdir(), 'digits-'));
  for (const label of readdirSync(source)) {
    mkdirSync(join(folder, label));
    for (const file of readdirSync(join(source, label)).sort().slice(0, perClass)) copyFileSync(join(source, label, file), join(folder, label, file));
  }
  return folder;
}

/**
 * Two machines that share nothing but Temporal and an object store (a real versitygw): worker processes with their own
 * data directories, artifacts in the bucket, the dataset uploaded there with `cli dataset upload`.
 */
describe('preprocessDataset and mlPipeline on two machines sharing only Temporal and object storage, workers dying or cancelled', () => {
  let env: TestWorkflowEnvironment;
  let objectStore: Awaited<ReturnType<typeof startTestObjectStore>>;
  let storeEnv: Record<string, string>;
  let workflowWorker: InProcessWorkers;
  let digits: string;
  let source: string;
  const machines = { a: temporaryDataDir(), b: temporaryDataDir() };
  const workers: WorkerProcess[] = [];
  const startMachine = async (dataDir: string, queues: string) => {
    const worker = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: queues, ...storeEnv });
    workers.push(worker);
    return worker;
  };

  before(async () => {
    objectStore = await startTestObjectStore();
    storeEnv = objectStore.env('artifacts');
    // This process runs the workflows; it is a third machine, with a data directory of its own.
    Object.assign(process.env, storeEnv, { TEMPORAL_ML_DATA_DIR: temporaryDataDir() });
    env = await startTemporal();
    workflowWorker = await runWorkersInProcess(env, ['ml-pipeline']);
    digits = digitsFolder(200);
    source = `s3://${objectStore.bucket}/datasets/digits`;
    const { stdout } = await cli(['dataset', 'upload', digits, source], storeEnv);
    assert.match(stdout, /Uploaded 2000 files/);
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await workflowWorker?.shutdown();
    await env?.teardown();
    await objectStore?.stop();
    for (const worker of workers) assert.ok(!worker.output().includes(storeEnv.AWS_SECRET_ACCESS_KEY!), 'no worker logs the object store secret');
  });

  const input = (size: number): PreprocessDatasetInput => ({
    dataset: { source },
    preprocess: { width: 32, height: 32, channels: 3 },
    batching: { size, parallelism: 2 },
  });

  it('finishes with the same dataset after SIGKILL of one machine mid-run, the other taking over; no half-written artifact', async () => {
    const first = await startMachine(machines.a, 'ml-cpu');
    const handle = await env.client.workflow.start(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `preprocess-fault-${Date.now()}`, args: [input(100)] });
    for (;;) {
      const progress = await handle.query(preprocessProgressQuery);
      if (progress.batchesDone >= 4) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    first.process.kill('SIGKILL');
    await first.stop();
    // An uninterrupted run with other batches, to compare with: it runs while the server waits out the heartbeat
    // timeout of the batches the killed worker held.
    const referenceHandle = await env.client.workflow.start(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `preprocess-reference-${Date.now()}`, args: [input(1000)] });
    await startMachine(machines.b, 'ml-cpu');
    const result = await handle.result();
    const reference = await referenceHandle.result();

    const history = await handle.fetchHistory();
    const attempts = history.events!.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt ?? 1] : []));
    assert.ok(Math.max(...attempts) > 1, 'a batch in flight at the kill was retried');
    const duplicates = duplicateFiles(digits);
    assert.deepEqual(result.leftOutByReason, duplicates ? { duplicate: duplicates } : {});
    assert.equal(result.images.kept, 2000 - duplicates);

    // Every content-addressed object in the bucket holds exactly that content; every shard decodes.
    const bucketRoot = join(objectStore.dataDir, objectStore.bucket, 'artifacts', 'sha256');
    const blobs = readdirSync(bucketRoot, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.parentPath.split('/').at(-1)!.length === 2);
    assert.ok(blobs.length > 0);
    for (const blob of blobs) {
      const hash = basename(blob.name).split('.')[0]!;
      assert.equal(createHash('sha256').update(readFileSync(join(blob.parentPath, blob.name))).digest('hex'), hash, blob.name);
    }
    const store = artifactStore();
    const manifest = await store.readJson<DatasetManifest>(result.manifestUri);
    for (const shard of manifest.shards) assert.equal(decodeNpy(await store.read(shard.imagesUri)).shape[0], shard.count);
    for (const dataDir of Object.values(machines)) assert.ok(!existsSync(join(dataDir, 'artifacts')), `no local artifact store in ${dataDir}`);

    // The uninterrupted run produces the same images, in the same splits.
    assert.equal(reference.fingerprint, result.fingerprint);
    assert.deepEqual(reference.counts, result.counts);
    console.log(`killed after 4 of ${result.batches} batches; attempts ${JSON.stringify(attempts.filter((a) => a > 1))}; ${result.images.kept} images kept; ${blobs.length} objects verified`);
  });

  it('runs mlPipeline across both machines; `cli artifact get` copies the model out for the stock loader', async () => {
    await startMachine(machines.a, 'ml-cpu,ml-train');
    const result = await env.client.workflow.execute(mlPipeline, {
      taskQueue: 'ml-pipeline',
      workflowId: `ml-pipeline-two-machines-${Date.now()}`,
      args: [{ dataset: { source, maxImages: 400 }, preprocess: { width: 28, height: 28, channels: 1 }, model: { architecture: 'mlp', hiddenUnits: [32] }, training: { epochs: 2 }, compression: null }],
    });
    assert.equal(result.status, 'trained');
    assert.match(result.modelUri, /^artifact:\/\/sha256\//);
    assert.ok(result.testAccuracy > 0.3, `test accuracy ${result.testAccuracy}`);

    const dest = join(mkdtempSync(join(tmpdir(), 'artifact-get-')), 'model');
    const { stdout } = await cli(['artifact', 'get', result.modelUri, dest], storeEnv);
    assert.match(stdout, new RegExp(`^s3://${objectStore.bucket}/artifacts/sha256/\\S+ -> ${dest}`));
    const model = await tensorflow().tf.loadLayersModel(`file://${dest}/model.json`);
    assert.equal(model.countParams(), result.parameterCount);
  });

  it('stops its batches when the workflow is cancelled', async () => {
    const live = workers.filter((w) => w.process.exitCode === null && w.process.signalCode === null);
    if (live.length === 0) live.push(await startMachine(machines.b, 'ml-cpu'));
    // Another spec, so nothing comes from the cache of the runs before.
    const handle = await env.client.workflow.start(preprocessDataset, {
      taskQueue: 'ml-pipeline',
      workflowId: `preprocess-cancel-${Date.now()}`,
      // Large enough images that the one batch runs for seconds: cancellation reaches it at its next heartbeat.
      args: [{ ...input(2000), preprocess: { width: 128, height: 128, channels: 3 } }],
    });
    for (;;) {
      const progress = await handle.query(preprocessProgressQuery);
      if (progress.stage === 'preprocessing') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await handle.cancel();
    const error = await handle.result().then(() => assert.fail('the run should end cancelled'), (err: unknown) => err);
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, `got ${error}`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      // Whichever ml-cpu worker took the batch reports it.
      const metrics = (await Promise.all(live.map(async (w) => (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text()))).join('\n');
      if (/temporal_ml_activity_executions_total\{activity_type="preprocessBatch",task_queue="ml-cpu",outcome="cancelled"\} [1-9]/.test(metrics)) break;
      assert.ok(Date.now() < deadline, `no preprocessBatch ended cancelled:\n${metrics.split('\n').filter((l) => l.includes('preprocessBatch')).join('\n')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it('gc on the object store removes unreachable old objects and interrupted uploads, never what a closed or an open run reads', async () => {
    // No worker but this process's workflow worker: the open run below waits for its first activity, writing nothing.
    await Promise.all(workers.map((w) => w.stop()));
    const store = artifactStore() as S3ArtifactStore;
    const Bucket = store.bucket;
    const objectKeys = async () => {
      const keys: string[] = [];
      let ContinuationToken: string | undefined;
      do {
        const page = await store.client.send(new ListObjectsV2Command({ Bucket, Prefix: `${store.prefix}/`, ContinuationToken }));
        keys.push(...(page.Contents ?? []).map((o) => o.Key!));
        ContinuationToken = page.NextContinuationToken;
      } while (ContinuationToken);
      return keys.sort();
    };
    const uploads = async () => (await store.client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: `${store.prefix}/` }))).Uploads ?? [];
    const readable = async (manifestUri: string) => {
      const manifest = await store.readJson<DatasetManifest>(manifestUri);
      return (await Promise.all([manifest.imagesIndexUri, ...manifest.shards.flatMap((s) => [s.imagesUri, s.labelsUri])].map((uri) => store.isIntactBlob(uri)))).every(Boolean);
    };

    const closedManifest = await writeSyntheticDataset(store, 8);
    const openManifest = await writeSyntheticDataset(store, 12);
    const closed = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `gc-closed-${Date.now()}`, args: [{ manifestUri: closedManifest }] });
    await closed.terminate('closed before gc');
    const garbage = [
      (await store.putBlob(Buffer.from('unreachable'), '.npy')).uri,
      (await store.putDirectory({ 'model.json': Buffer.from('{}'), 'weights.bin': Buffer.from('unreachable weights') })).uri,
      await store.putNamed('distillation/teacher-logits/ab/unreachable.json', '{}'),
    ];
    // A writer killed mid-upload leaves a multipart upload that was never completed.
    const { UploadId } = await store.client.send(new CreateMultipartUploadCommand({ Bucket, Key: `${store.prefix}/sha256/00/interrupted` }));
    await store.client.send(new UploadPartCommand({ Bucket, Key: `${store.prefix}/sha256/00/interrupted`, UploadId, PartNumber: 1, Body: Buffer.alloc(1024) }));
    await new Promise((r) => setTimeout(r, 2_000));
    // This run stays open, waiting for its activity, while gc runs.
    const open = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `gc-open-${Date.now()}`, args: [{ manifestUri: openManifest }] });
    try {
      for (let i = 0; !(await open.describe()).raw.pendingActivities?.length; i++) {
        assert.ok(i < 200, 'the open run schedules its first activity');
        await new Promise((r) => setTimeout(r, 50));
      }
      const writtenDuringOpenRun = (await store.putBlob(Buffer.from('written while a run is open'), '.npy')).uri;

      const before = await objectKeys();
      const dryRun = (await cli(['gc', '--older-than', '1s', '--dry-run'], { ...storeEnv, TEMPORAL_ADDRESS: env.address })).stdout;
      assert.deepEqual(await objectKeys(), before, 'a dry run removes nothing');
      assert.equal((await uploads()).length, 1);
      const planned = new Set([...dryRun.matchAll(/^would remove (\S+) /gm)].map((m) => m[1]!));
      for (const uri of garbage) assert.ok(planned.has(uri.slice('artifact://'.length)), `${uri} planned:\n${dryRun}`);
      assert.ok([...planned].some((key) => key.startsWith('tmp/multipart-uploads/')), dryRun);

      const real = (await cli(['gc', '--older-than', '1s'], { ...storeEnv, TEMPORAL_ADDRESS: env.address })).stdout;
      assert.match(real, /Removed \d+ artifact\(s\)/, real);
      for (const uri of garbage) assert.equal(await store.exists(uri), false, uri);
      assert.deepEqual(await uploads(), [], 'the interrupted upload is aborted');
      assert.ok(await store.exists(writtenDuringOpenRun), 'what changed since the open run started stays');
      assert.ok(await readable(openManifest), 'what the open run reads is there');
      assert.ok(await readable(closedManifest), 'the input of a closed run is there');
    } finally {
      await open.terminate('gc test done');
    }
  });

  it('trains streamed from the object store through a cache smaller than the split, within its bound plus a window, as from memory', async () => {
    const cacheBytes = 30_000;
    const shuffleWindow = 60;
    const dataDir = temporaryDataDir();
    const worker = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-cpu,ml-train', ...storeEnv, TEMPORAL_ML_ARTIFACT_CACHE_BYTES: String(cacheBytes) });
    workers.push(worker);
    // 300 digits of 16x16 in batches of 30: ten training shards of 17 to 26 images (4.5 to 6.8 kB).
    const preprocessed = await env.client.workflow.execute(preprocessDataset, {
      taskQueue: 'ml-pipeline',
      workflowId: `preprocess-small-shards-${Date.now()}`,
      args: [{ dataset: { source, maxImages: 300 }, preprocess: { width: 16, height: 16, channels: 1 }, batching: { size: 30, parallelism: 2 } }],
    });
    const store = artifactStore() as S3ArtifactStore;
    const manifest = await store.readJson<DatasetManifest>(preprocessed.manifestUri);
    const trainShards = manifest.shards.filter((shard) => shard.split === 'train' && shard.count > 0);
    const fileBytes = (uri: string) => statSync(join(objectStore.dataDir, objectStore.bucket, store.locationOf(uri).slice(`s3://${objectStore.bucket}/`.length))).size;
    const splitBytes = trainShards.reduce((sum, shard) => sum + fileBytes(shard.imagesUri), 0);
    assert.ok(splitBytes > cacheBytes, `the training shards (${splitBytes} bytes) are meant to overflow the cache (${cacheBytes})`);
    // The most a window can span: as many of the smallest shards as fit in shuffleWindow images, sized as the largest.
    const counts = trainShards.map((shard) => shard.count).sort((a, b) => a - b);
    let windowShards = 0;
    for (let rows = 0; windowShards < counts.length && rows + counts[windowShards]! <= shuffleWindow; ) rows += counts[windowShards++]!;
    const windowBytes = trainShards.map((shard) => fileBytes(shard.imagesUri)).sort((a, b) => b - a).slice(0, Math.max(1, windowShards)).reduce((a, b) => a + b, 0);

    const start = (dataLoading: 'memory' | 'stream', window: number | null) =>
      env.client.workflow.start(trainModel, {
        taskQueue: 'ml-pipeline',
        workflowId: `train-s3-${dataLoading}-${window}-${Date.now()}`,
        args: [{ manifestUri: preprocessed.manifestUri, model: { architecture: 'mlp', hiddenUnits: [16], dropout: 0 }, training: { epochs: 2, batchSize: 12, earlyStopping: null, shuffleWindow: window, dataLoading } }],
      });
    const memory = await (await start('memory', shuffleWindow)).result();
    const cacheDir = join(dataDir, 'artifact-cache');
    const streaming = await start('stream', shuffleWindow);
    let peak = 0;
    let samples = 0;
    for (;; samples++) {
      const bytes = diskBytesUnder(cacheDir, worker.process.pid!);
      // A sample counts when the workflow says it is still training after it was taken: evaluation comes next.
      if ((await streaming.query(trainingProgressQuery)).stage !== 'training') break;
      peak = Math.max(peak, bytes);
      await new Promise((r) => setTimeout(r, 10));
    }
    const streamed = await streaming.result();
    assert.equal(streamed.dataLoading, 'stream');
    assert.equal(streamed.history.length, 2);
    streamed.history.forEach((epoch, i) => {
      for (const key of ['loss', 'accuracy', 'validationLoss', 'validationAccuracy'] as const) {
        assert.ok(Math.abs(epoch[key]! - memory.history[i]![key]!) <= 1e-5, `epoch ${i + 1} ${key}: streamed ${epoch[key]}, from memory ${memory.history[i]![key]}`);
      }
    });
    console.log(`training shards ${splitBytes} bytes, cache bound ${cacheBytes}, a window up to ${windowBytes}; the cache peaked at ${peak} bytes on disk (${samples} samples)`);
    assert.ok(samples > 0 && peak > 0, 'the cache was sampled while training');
    assert.ok(peak <= cacheBytes + windowBytes, `the cache took ${peak} bytes, over its bound ${cacheBytes} plus a window's ${windowBytes}`);

    // Without a window every shard is read all epoch long: refused up front, not retried, naming both settings.
    const error = await (await start('stream', null)).result().then(() => assert.fail('streaming one permutation of the split should be refused'), (err: unknown) => err);
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof ActivityFailure && error.cause.cause instanceof ApplicationFailure, `got ${error}`);
    assert.equal(error.cause.retryState, RetryState.NON_RETRYABLE_FAILURE);
    assert.match(error.cause.cause.message, /^training\.shuffleWindow: .*\(TEMPORAL_ML_ARTIFACT_CACHE_BYTES=30000\): set training\.shuffleWindow .* or raise TEMPORAL_ML_ARTIFACT_CACHE_BYTES$/);
  });
});
