import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { followTraining } from '../cli/follow';
import { trainingProgress } from '../cli/training-progress';
import { MAX_CHILD_CRASHES } from '../activities/training';
import { artifactStore } from '../lib/artifacts';
import type { TrainModelInput } from '../lib/schemas/train-model';
import { trainModel } from '../workflows';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { runWorkersInProcess, startTemporal, startWorkerProcess, temporaryDataDir, type InProcessWorkers, type WorkerProcess } from './helpers/temporal';
import { applicationFailureOf } from './helpers/failures';
import { faultRunUnits } from './helpers/fault-run-size';
import { trainingChildOf } from './helpers/training';
import { waitFor } from './helpers/wait';

const { EventType } = temporal.api.enums.v1;
const LONG_RUN = { epochs: 12, batchSize: 8, checkpointEverySeconds: 1 };

describe('trainModel under faults, and its history (real Temporal server, real worker processes)', () => {
  let env: TestWorkflowEnvironment;
  let workflowWorkers: InProcessWorkers;
  let trainWorker: WorkerProcess;
  let tinyManifest: string;
  let historyManifest: string;
  let smallManifest: string;

  before(async () => {
    const dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    env = await startTemporal();
    workflowWorkers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
    // Training in a real worker process, with the production heartbeat settings.
    trainWorker = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' });
    // One batch per epoch: epochs take milliseconds.
    tinyManifest = await writeSyntheticDataset(artifactStore(), 32);
    // 128 images, several batches per epoch: 300 epochs outlast several heartbeat intervals (2 s) on a fast machine too.
    historyManifest = await writeSyntheticDataset(artifactStore(), 128);
    // 2,048 images: in batches of 8 (LONG_RUN), epochs of 256 batches.
    smallManifest = await writeSyntheticDataset(artifactStore(), 2048);
  });

  after(async () => {
    await trainWorker.stop();
    await workflowWorkers.shutdown();
    await env.teardown();
  });

  const input = (manifestUri: string, training: NonNullable<TrainModelInput['training']>): TrainModelInput => ({
    modelName: 'faults',
    manifestUri,
    model: { architecture: 'mlp', hiddenUnits: [8], dropout: 0 },
    training: { batchSize: 32, earlyStopping: null, ...training },
  });
  const start = (name: string, trainingInput: TrainModelInput) =>
    env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `${name}-${Date.now()}`, args: [trainingInput] });
  const eventsOf = async (handle: WorkflowHandle) => (await handle.fetchHistory()).events ?? [];
  const trainingStarts = async (handle: WorkflowHandle) =>
    (await eventsOf(handle)).filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED).slice(0, 1).map((e) => e.activityTaskStartedEventAttributes!);

  /** LONG_RUN with epochs (3 to 12) for a run to interrupt in its middle (see FAULT_RUN_SECONDS), timed over 2 epochs. */
  let longRun: Promise<typeof LONG_RUN> | undefined;
  const longRunForThisMachine = () =>
    (longRun ??= (async () => {
      const { history } = await (await start('pace', input(smallManifest, { ...LONG_RUN, epochs: 2 }))).result();
      const perEpoch = history.reduce((sum, epoch) => sum + epoch.seconds, 0) / history.length;
      const epochs = faultRunUnits(perEpoch, 3, LONG_RUN.epochs);
      console.log(`${perEpoch.toFixed(2)} s an epoch: runs of ${epochs} epochs`);
      return { ...LONG_RUN, epochs };
    })());

  /** Kills the next training process the worker starts (one not in `killed`) with `signal`; returns its PID. */
  async function signalNextChild(signal: NodeJS.Signals, killed: number[] = []): Promise<number> {
    const pid = await waitFor('a training process', 60_000, () => {
      const child = trainingChildOf(trainWorker.process.pid!);
      return child && !killed.includes(child) ? child : undefined;
    });
    process.kill(pid, signal);
    return pid;
  }

  it('keeps history bounded: 300 epochs take as many events as 3, however many heartbeats they send', { timeout: 600_000 }, async () => {
    const short = await start('history-short', input(historyManifest, { epochs: 3 }));
    await short.result();
    const long = await start('history-long', input(historyManifest, { epochs: 300 }));
    const startedAt = Date.now();
    const epochsSeen = new Set<number>();
    let finished = false;
    const result = long.result().finally(() => (finished = true));
    while (!finished) {
      const current = (await trainingProgress(env.client, long.workflowId))?.current;
      if (current) epochsSeen.add(current.epoch);
      await new Promise((r) => setTimeout(r, 200));
    }
    const trained = await result;
    assert.equal(trained.history.length, 300);
    const [shortEvents, longEvents] = [(await eventsOf(short)).length, (await eventsOf(long)).length];
    console.log(`3 epochs: ${shortEvents} events; 300 epochs: ${longEvents} events in ${Date.now() - startedAt} ms; ${epochsSeen.size} distinct heartbeated positions read`);
    // Heartbeats reach the server at most every 2 s: a run of a few seconds shows two positions or more.
    assert.ok(epochsSeen.size >= 2, `progress read from heartbeats while it ran (${[...epochsSeen]})`);
    assert.equal(longEvents, shortEvents);
    assert.ok(longEvents < 5000);
  });

  it('times out a hung training process by heartbeat, kills it, and the retry resumes and finishes', { timeout: 300_000 }, async () => {
    const paced = await longRunForThisMachine();
    const handle = await start('hang', input(smallManifest, paced));
    await waitFor('a heartbeated checkpoint', 60_000, async () => ((await trainingProgress(env.client, handle.workflowId))?.current?.checkpoint ? true : undefined));
    // A stopped process is a hung one: it reports nothing, ignores SIGTERM and holds its resources.
    const hung = await signalNextChild('SIGSTOP');
    const result = await handle.result();
    assert.equal(result.history.length, paced.epochs);
    assert.equal(result.resumedFrom.length, 1, `resumed once: ${JSON.stringify(result.resumedFrom)}`);
    assert.throws(() => process.kill(hung, 0), { code: 'ESRCH' }, 'the hung process was killed');
    const [started] = await trainingStarts(handle);
    assert.equal(started!.attempt, 2);
    assert.equal(started!.lastFailure?.timeoutFailureInfo?.timeoutType, temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT);
  });

  it('restarts a crashed training process from its last checkpoint within the attempt', { timeout: 300_000 }, async () => {
    const paced = await longRunForThisMachine();
    const handle = await start('crash-once', input(smallManifest, paced));
    await waitFor('a heartbeated checkpoint', 60_000, async () => ((await trainingProgress(env.client, handle.workflowId))?.current?.checkpoint ? true : undefined));
    await signalNextChild('SIGKILL');
    const result = await handle.result();
    assert.equal(result.history.length, paced.epochs);
    assert.equal(result.resumedFrom.length, 1);
    const [started] = await trainingStarts(handle);
    assert.equal(started!.attempt, 1);
  });

  it(`fails without retries after ${MAX_CHILD_CRASHES} crashes, with each exit reason`, { timeout: 300_000 }, async () => {
    const handle = await start('crash-always', input(smallManifest, LONG_RUN));
    const killed: number[] = [];
    for (let i = 0; i < MAX_CHILD_CRASHES; i++) killed.push(await signalNextChild('SIGKILL', killed));
    const failure = await applicationFailureOf(handle.result());
    assert.equal(failure.type, 'TrainingCrashed');
    assert.equal(failure.nonRetryable, true);
    assert.equal(failure.message.match(/signal SIGKILL/g)?.length, MAX_CHILD_CRASHES, failure.message);
    const [started] = await trainingStarts(handle);
    assert.equal(started!.attempt, 1);
  });

  it('fails without retries, naming the file, on a manifest that is not JSON or a shard that is missing', { timeout: 120_000 }, async () => {
    const store = artifactStore();
    const notJson = (await store.putBlob(Buffer.from('not a manifest'), '.json')).uri;
    const failure = await applicationFailureOf((await start('bad-manifest', input(notJson, { epochs: 1 }))).result());
    assert.equal(failure.type, 'InvalidInput');
    assert.equal(failure.nonRetryable, true);
    assert.ok(failure.message.startsWith(`manifestUri: the dataset manifest ${notJson} is not valid JSON`), failure.message);

    const manifest = JSON.parse((await store.read(await writeSyntheticDataset(store, 8))).toString());
    const gone = store.uriOf('sha256/no-such-shard.npy');
    manifest.shards[0].imagesUri = gone;
    const withMissingShard = (await store.putBlob(Buffer.from(JSON.stringify(manifest)), '.json')).uri;
    const missing = await applicationFailureOf((await start('missing-shard', input(withMissingShard, { epochs: 1 }))).result());
    assert.equal(missing.nonRetryable, true);
    assert.equal(missing.message, `manifestUri: the dataset shard ${gone} is missing`);
  });

  it('follows a training run that does not exist yet while its parent runs', { timeout: 120_000 }, async () => {
    // A parent that stays running: no worker polls its task queue.
    const parent = await env.client.workflow.start(trainModel, { taskQueue: 'nobody-polls-this', workflowId: `parent-${Date.now()}`, args: [input(tinyManifest, {})] });
    const childId = `${parent.workflowId}-train`;
    const following = followTraining(env.client, childId, parent);
    await new Promise((r) => setTimeout(r, 1500));
    const child = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: childId, args: [input(tinyManifest, { epochs: 2 })] });
    await following;
    assert.equal((await child.describe()).status.name, 'COMPLETED');
    await parent.terminate();
  });
});
