import type { WorkflowHandle } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { MockActivityEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { partitionDataset, type PartitionedDataset, type TrainPartitionInput, type TrainPartitionResult } from '../activities/distributed';
import { artifactStore } from '../lib/artifacts';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { optimizerWeightsFromFiles } from '../lib/training/checkpoint';
import type { TrainProgress } from '../lib/training/train-job';
import { trainPartitionsProbe } from './fixtures/train-partitions-probe';
import { preprocessDigits } from './helpers/digits';
import { faultRunUnits } from './helpers/fault-run-size';
import { startTemporal, startWorkerProcess, temporaryDataDir, type WorkerProcess } from './helpers/temporal';
import { trainingChildrenOf } from './helpers/training';
import { waitFor } from './helpers/wait';
import { modelJsonUrl } from './helpers/local-store';

const TASK_QUEUE = 'train-partitions-probe';
// Before anything reads the settings (tensorflow() does): this process and the worker share one artifact store.
const dataDir = temporaryDataDir();
process.env.TEMPORAL_ML_DATA_DIR = dataDir;
const { tf } = tensorflow();

describe('trainPartition (real Temporal server, a real training worker process with two slots)', () => {
  let env: TestWorkflowEnvironment;
  let probeWorker: Worker;
  let probeRunning: Promise<void>;
  let trainWorker: WorkerProcess;
  let partitioned: PartitionedDataset;

  before(async () => {
    env = await startTemporal();
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/train-partitions-probe') });
    probeWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: TASK_QUEUE, workflowBundle: { code } });
    probeRunning = probeWorker.run();
    trainWorker = await startWorkerProcess(env.address, dataDir, {
      TASK_QUEUES: 'ml-train',
      TEMPORAL_ML_TRAIN_SLOTS: '2',
      TEMPORAL_ML_TRAIN_INTRA_OP_THREADS: '1',
      TEMPORAL_ML_TRAIN_INTER_OP_THREADS: '1',
    });
    const manifestUri = await preprocessDigits(1200);
    partitioned = (await new MockActivityEnvironment().run(partitionDataset, {
      manifestUri,
      numPartitions: 2,
      partition: { strategy: 'iid' as const, alpha: 0.5, seed: 0 },
    })) as PartitionedDataset;
  });

  after(async () => {
    await trainWorker?.stop();
    probeWorker?.shutdown();
    await probeRunning;
    await env?.teardown();
  });

  const partitionInput = (index: number, overrides: Partial<TrainPartitionInput> = {}): TrainPartitionInput => ({
    modelName: 'distributed-test',
    round: 0,
    partition: index,
    manifestUri: partitioned.partitions[index]!.manifestUri,
    globalModelUri: null,
    model: modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [16], dropout: 0 }),
    training: trainingSpecSchema.parse({ epochs: 1, batchSize: 16, learningRate: 0.005, earlyStopping: null }),
    localSteps: 30,
    optimizerStateUri: null,
    optimizerState: 'carry',
    ...overrides,
  });
  const start = (name: string, inputs: TrainPartitionInput[]) =>
    env.client.workflow.start(trainPartitionsProbe, { taskQueue: TASK_QUEUE, workflowId: `${name}-${Date.now()}`, args: [inputs] });
  const weightsOf = async (uri: string) => (await tf.loadLayersModel(modelJsonUrl(uri))).getWeights().map((w) => Array.from(w.dataSync()));
  const optimizerSteps = async (uri: string) => optimizerWeightsFromFiles(tf, await artifactStore().readDirectory(uri))[0]!.tensor.dataSync()[0];
  const trainingChildren = () => trainingChildrenOf(trainWorker.process.pid!);
  /** The latest heartbeat of the probe's running trainPartition activity, when it has one. */
  async function heartbeatOf(handle: WorkflowHandle): Promise<TrainProgress | undefined> {
    const pending = (await handle.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === 'trainPartition');
    const payloads = pending?.heartbeatDetails?.payloads;
    return payloads?.length ? decodeFromPayloadsAtIndex<TrainProgress>(env.client.options.loadedDataConverter, 0, payloads) : undefined;
  }

  it('trains two partitions at once, each from the global weights; carried optimizer state continues across rounds', { timeout: 300_000 }, async () => {
    const round0 = start('round-0', [partitionInput(0), partitionInput(1)]);
    // Two slots: both partitions' training processes run at the same time, with the configured TensorFlow threads.
    const children = await waitFor('two training processes at once', 120_000, () => {
      const pids = trainingChildren();
      return pids.length === 2 ? pids : undefined;
    });
    for (const pid of children) {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      assert.ok(environ.includes('TF_NUM_INTRAOP_THREADS=1') && environ.includes('TF_NUM_INTEROP_THREADS=1'), `thread settings in the environment of ${pid}`);
    }
    const first = await (await round0).result();
    first.forEach((result, index) => {
      assert.equal(result.samples, partitioned.partitions[index]!.count);
      assert.ok(Number.isFinite(result.loss) && result.accuracy > 0);
      assert.deepEqual(result.resumes, []);
    });
    assert.notEqual(first[0]!.modelUri, first[1]!.modelUri, 'different data, different weights');
    assert.equal(await optimizerSteps(first[0]!.optimizerStateUri!), 30);

    const global = first[0]!.modelUri;
    const round1 = (round: TrainPartitionInput['round'], previous: TrainPartitionResult[], optimizerState: 'carry' | 'reset') =>
      [0, 1].map((index) => partitionInput(index, { round, globalModelUri: global, optimizerStateUri: previous[index]!.optimizerStateUri, optimizerState }));
    const carried = await (await start('round-1-carry', round1(1, first, 'carry'))).result();
    const globalWeights = await weightsOf(global);
    for (const result of carried) assert.notDeepEqual(await weightsOf(result.modelUri), globalWeights, 'trained away from the global weights');
    assert.equal(await optimizerSteps(carried[0]!.optimizerStateUri!), 60, 'Adam continued from round 0: 30 + 30 steps');

    const reset = await (await start('round-1-reset', round1(1, first, 'reset'))).result();
    assert.deepEqual(reset.map((r) => r.optimizerStateUri), [null, null]);
    assert.notDeepEqual(await weightsOf(reset[0]!.modelUri), await weightsOf(carried[0]!.modelUri), 'a fresh optimizer takes other steps');
  });

  it('resumes from its last checkpoint after its training process is killed, ending where an undisturbed run ends', { timeout: 300_000 }, async () => {
    // Batches of 4, as many steps (400 to 2,400) as make a run to interrupt in its middle (see FAULT_RUN_SECONDS).
    const training = trainingSpecSchema.parse({ epochs: 1, batchSize: 4, earlyStopping: null, checkpointEverySeconds: 1 });
    const [pace] = await (await start('pace', [partitionInput(0, { training, localSteps: 200 })])).result();
    const steps = faultRunUnits(pace!.timings.train / 200, 400, 2400);
    console.log(`200 steps in ${pace!.timings.train.toFixed(2)} s: ${steps} steps`);
    const long = partitionInput(0, { training, localSteps: steps });
    const undisturbed = (await (await start('undisturbed', [long])).result())[0]!;
    const handle = await start('killed', [long]);
    await waitFor('a heartbeated checkpoint', 120_000, async () => ((await heartbeatOf(handle))?.checkpoint ? true : undefined));
    // The worker's warm training processes: the one training now, and any left idle by the runs before.
    for (const child of trainingChildren()) process.kill(child, 'SIGKILL');
    const [resumed] = await handle.result();
    assert.equal(resumed!.resumes.length, 1, JSON.stringify(resumed!.resumes));
    assert.equal(await optimizerSteps(resumed!.optimizerStateUri!), steps);
    const [a, b] = [await weightsOf(resumed!.modelUri), await weightsOf(undisturbed.modelUri)];
    a.forEach((values, i) => values.forEach((v, j) => assert.ok(Math.abs(v - b[i]![j]!) < 1e-4, `weight ${i}[${j}]: ${v} vs ${b[i]![j]}`)));
  });
});
