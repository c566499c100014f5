import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PruneModelInput } from '../activities/pruning';
import { artifactStore } from '../lib/artifacts';
import { prunableKernels, type LayerSparsity } from '../lib/compression/magnitude-pruning';
import { decodeSparseModel } from '../lib/compression/sparse-encoding';
import { keptWeights } from '../lib/compression/sparsity-schedule';
import type { HiddenLayerUnits } from '../lib/compression/structured-pruning';
import { saveModel } from '../lib/model-io';
import { buildModel } from '../lib/models';
import { pruneVariantSchema, structuredPruneVariantSchema } from '../lib/schemas/compression';
import { modelSpecSchema } from '../lib/schemas/model';
import { tensorflow, type TensorFlow } from '../lib/tf';
import type { TrainProgress } from '../lib/training/train-job';
import { invalidInputOf } from './helpers/failures';
import { startTemporal, startWorkerProcess, temporaryDataDir, type WorkerProcess } from './helpers/temporal';
import { trainingChildOf } from './helpers/training';
import { waitFor } from './helpers/wait';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { pruneProbe } from './fixtures/prune-probe';
import { modelJsonUrl } from './helpers/local-store';

const PROBE_QUEUE = 'prune-probe';

/** The latest heartbeat of the run's pruneModel activity, if any. */
async function pruningHeartbeat(handle: WorkflowHandle): Promise<TrainProgress | undefined> {
  const { raw } = await handle.describe();
  const payload = raw.pendingActivities?.find((a) => a.activityType?.name === 'pruneModel')?.heartbeatDetails?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<TrainProgress>(payload) : undefined;
}

describe('pruneModel (real Temporal server, training in a real worker process)', () => {
  let env: TestWorkflowEnvironment;
  let probeWorker: Worker;
  let probeRunning: Promise<void>;
  let trainWorker: WorkerProcess;
  let modelUri: string;
  let smallManifest: string;
  let tinyManifest: string;
  let tf: TensorFlow;

  before(async () => {
    const dataDir = temporaryDataDir();
    // Before anything reads the settings (loading TensorFlow does): this process's store is the worker's.
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    tf = tensorflow().tf;
    env = await startTemporal();
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/prune-probe') });
    probeWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: PROBE_QUEUE, workflowBundle: { code } });
    probeRunning = probeWorker.run();
    trainWorker = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' });
    const spec = modelSpecSchema.parse({ architecture: 'cnn', filters: [4, 8], hiddenUnits: [16], dropout: 0 });
    modelUri = (await saveModel(tf, artifactStore(), buildModel(tf, spec, { height: 8, width: 8, channels: 1 }, 4, 1))).uri;
    // In batches of 8, 128 steps an epoch: long enough to kill a fine-tuning run in its middle.
    smallManifest = await writeSyntheticDataset(artifactStore(), 1024);
    tinyManifest = await writeSyntheticDataset(artifactStore(), 256);
  });

  after(async () => {
    await trainWorker?.stop();
    probeWorker?.shutdown();
    await probeRunning;
    await env?.teardown();
  });

  const start = (name: string, input: Omit<PruneModelInput, 'modelName'>) =>
    env.client.workflow.start(pruneProbe, { taskQueue: PROBE_QUEUE, workflowId: `${name}-${Date.now()}`, args: [{ modelName: 'pruned', ...input }] });

  it('prunes to the target sparsity though its training process is SIGKILLed mid fine-tuning, and stores a sparse alternate', { timeout: 300_000 }, async () => {
    // The final sparsity is reached at step 100, in the first epoch; the kill comes after the first epoch's checkpoint,
    // with epochs to spare on a fast machine (at 4 epochs the whole test took 5 s there).
    const variant = pruneVariantSchema.parse({ method: 'prune', finalSparsity: 0.8, endStep: 100, frequency: 10, fineTuning: { epochs: 8, batchSize: 8 } });
    const handle = await start('prune-sigkill', { modelUri, manifestUri: smallManifest, variant });
    await waitFor('a heartbeated checkpoint', 120_000, async () => ((await pruningHeartbeat(handle))?.checkpoint ? true : undefined));
    const child = await waitFor('the training process', 30_000, () => trainingChildOf(trainWorker.process.pid!));
    process.kill(child, 'SIGKILL');

    const result = await handle.result();
    const details = result.details as { layers: LayerSparsity[]; fineTuning: { resumes: unknown[] }; sparse: { bytes: number } };
    assert.equal(details.fineTuning.resumes.length, 1, 'resumed once, from the checkpoint');
    assert.equal(details.layers.length, 4);
    for (const layer of details.layers) assert.equal(layer.zeros, layer.weights - keptWeights(layer.weights, 0.8), layer.layer);

    // The main artifact is the dense model, loadable by stock TensorFlow.js, its pruned weights exactly zero.
    assert.equal(result.format, 'tfjs-layers');
    const model = await tf.loadLayersModel(modelJsonUrl(result.uri));
    assert.deepEqual(
      prunableKernels(model).map(({ kernel }) => kernel.read().dataSync().filter((v) => v === 0).length),
      details.layers.map((l) => l.zeros),
    );
    // The sparse alternate decodes to it byte for byte.
    const [sparse] = result.alternates!;
    assert.equal(sparse!.label, 'sparse');
    assert.equal(sparse!.bytes, details.sparse.bytes);
    const dense = await artifactStore().readDirectory(result.uri);
    const decoded = decodeSparseModel(await artifactStore().readDirectory(sparse!.uri));
    for (const name of Object.keys(dense)) assert.ok(Buffer.from(decoded[name]!).equals(dense[name]!), name);
  });

  it('structured pruning returns the smaller model, fine-tuned, with each hidden layer’s units before and after', { timeout: 120_000 }, async () => {
    const variant = structuredPruneVariantSchema.parse({ method: 'structured-prune', fraction: 0.5, fineTuning: { epochs: 1, batchSize: 16 } });
    const result = await (await start('structured', { modelUri, manifestUri: tinyManifest, variant })).result();
    const details = result.details as { layers: HiddenLayerUnits[]; parameterCount: number };
    assert.deepEqual(
      details.layers.map((l) => [l.before, l.after]),
      [
        [4, 2],
        [8, 4],
        [16, 8],
      ],
    );
    const model = await tf.loadLayersModel(modelJsonUrl(result.uri));
    assert.equal(model.countParams(), details.parameterCount);
    assert.deepEqual(model.outputs[0]!.shape, [null, 4]);
  });

  it('fails at once, without retries, naming the field, on inputs it cannot prune', { timeout: 120_000 }, async () => {
    const variant = pruneVariantSchema.parse({ method: 'prune', fineTuning: { epochs: 1, batchSize: 16 } });
    const outside = await invalidInputOf((await start('outside', { modelUri: 'artifact://../etc', manifestUri: tinyManifest, variant })).result());
    assert.match(outside.message, /^modelUri: .*outside/);
    const notAModel = await invalidInputOf((await start('not-a-model', { modelUri: tinyManifest, manifestUri: tinyManifest, variant })).result());
    assert.match(notAModel.message, /^modelUri: no TensorFlow.js layers model/);
    // 16 steps of fine-tuning: masks updated every 50 steps never reach the final sparsity.
    const tooShort = await invalidInputOf((await start('too-short', { modelUri, manifestUri: tinyManifest, variant })).result());
    assert.match(tooShort.message, /^variant\.frequency: fine-tuning runs 16 steps/);
  });
});
