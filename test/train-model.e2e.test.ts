import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { trainingProgress } from '../cli/training-progress';
import type { TrainingState } from '../lib/training/checkpoint';
import { trainModel } from '../workflows';
import { preprocessDigits } from './helpers/digits';
import { trainingChildOf } from './helpers/training';
import { waitFor } from './helpers/wait';
import { runWorkersInProcess, startTemporal, startWorkerProcess, temporaryDataDir, type InProcessWorkers, type WorkerProcess } from './helpers/temporal';
import { localArtifactStore } from './helpers/local-store';

describe('trainModel survives a killed worker (real Temporal server, real worker processes)', () => {
  let env: TestWorkflowEnvironment;
  let dataDir: string;
  let manifestUri: string;
  let workflowWorkers: InProcessWorkers;
  const trainWorkers: WorkerProcess[] = [];

  before(async () => {
    dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    env = await startTemporal();
    // All 10,000 digits: epochs long enough (about 440 batches of 16) to kill one reliably in its middle.
    manifestUri = await preprocessDigits(10_000);
    // Workflows and evaluation stay up in this process; only the training worker is killed.
    workflowWorkers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
  });

  after(async () => {
    await Promise.all(trainWorkers.map((w) => w.stop()));
    await workflowWorkers.shutdown();
    await env.teardown();
  });

  /** The live training worker, started if the tests before left none. */
  async function trainWorker(): Promise<WorkerProcess> {
    const live = trainWorkers.filter((w) => w.process.exitCode === null && w.process.signalCode === null).at(-1);
    if (live) return live;
    const started = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' });
    trainWorkers.push(started);
    return started;
  }

  // No dropout: a resumed run's weights are an uninterrupted run's, whichever way the images are fed.
  const trainingInput = (dataLoading: 'auto' | 'memory' | 'stream' = 'auto') => ({
    modelName: 'digits-fault-test',
    manifestUri,
    model: { architecture: 'cnn' as const, dropout: 0 },
    training: { epochs: 2, batchSize: 16, checkpointEverySeconds: 1, earlyStopping: null, dataLoading },
  });

  it('resumes streamed training from the last checkpoint after SIGKILL mid-epoch, redoing less than an epoch, and ends as an uninterrupted in-memory run', async () => {
    const first = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' });
    trainWorkers.push(first);
    const handle = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `fault-${Date.now()}`, args: [trainingInput('stream')] });

    // Kill in the middle of the second epoch, once the server holds a heartbeat with a checkpoint from within it.
    const atKill = await waitFor('a heartbeated checkpoint within epoch 2', 120_000, async () => {
      const current = (await trainingProgress(env.client, handle.workflowId))?.current;
      return current?.checkpoint && current.checkpoint.epoch === 2 && current.checkpoint.batch > 0 ? current : undefined;
    });
    const midEpochCheckpoint = atKill.checkpoint!;
    first.process.kill('SIGKILL');
    await first.stop();
    // The uninterrupted baseline starts now: it trains while the server waits out the killed attempt's heartbeat timeout.
    const baselineHandle = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `baseline-${Date.now()}`, args: [trainingInput('memory')] });
    const second = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' });
    trainWorkers.push(second);

    const result = await handle.result();
    console.log(`killed at epoch ${atKill.epoch} batch ${atKill.batch}/${atKill.batchesPerEpoch}; resumed from ${JSON.stringify(result.resumedFrom)}; accuracy ${result.evaluation.accuracy}`);
    assert.equal(result.resumedFrom.length, 1, 'exactly one resume');
    const resumed = result.resumedFrom[0]!;
    // Training goes on between the heartbeat seen and the kill: the resume point is that checkpoint or a later one.
    assert.equal(resumed.epoch, 2, 'resumed in the epoch it was killed in');
    assert.ok(resumed.batch >= midEpochCheckpoint.batch && resumed.batch > 0, `resumed from batch ${resumed.batch}, a mid-epoch checkpoint at or after ${midEpochCheckpoint.batch}`);
    assert.ok(atKill.batch - resumed.batch < atKill.batchesPerEpoch, 'less than one epoch redone');
    assert.equal(result.history.length, 2);
    assert.deepEqual((await trainingProgress(env.client, handle.workflowId))!.resumedFrom, result.resumedFrom);

    const baseline = await baselineHandle.result();
    console.log(`uninterrupted accuracy ${baseline.evaluation.accuracy}`);
    assert.deepEqual(baseline.resumedFrom, []);
    assert.deepEqual([result.dataLoading, baseline.dataLoading], ['stream', 'memory']);
    assert.ok(result.evaluation.accuracy > 0.9, `accuracy ${result.evaluation.accuracy}`);
    // The same seed gives the same batches: the killed, resumed, streamed run ends where the in-memory one does.
    assert.ok(Math.abs(result.evaluation.accuracy - baseline.evaluation.accuracy) <= 0.005, `${result.evaluation.accuracy} vs ${baseline.evaluation.accuracy}`);
  });

  it('stops training within a batch when the workflow is cancelled: a checkpoint at the stop, and the child exits', async () => {
    const worker = await trainWorker();
    // No checkpoints within an epoch but the one written on stopping.
    const input = { ...trainingInput(), training: { ...trainingInput().training, checkpointEverySeconds: 3600 } };
    const handle = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `cancel-${Date.now()}`, args: [input] });
    const beforeCancel = await waitFor('training past batch 5', 60_000, async () => {
      const current = (await trainingProgress(env.client, handle.workflowId))?.current;
      return current && current.batch > 5 ? current : undefined;
    });
    const child = trainingChildOf(worker.process.pid!);
    assert.ok(child, 'the training child process runs');
    const cancelledAt = Date.now();
    await handle.cancel();
    const metric = await waitFor('the cancelled training activity', 60_000, async () => {
      const text = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
      return /temporal_ml_activity_executions_total\{activity_type="runTraining",task_queue="ml-train",outcome="cancelled"\} 1/.exec(text)?.[0];
    });
    assert.ok(metric);
    await waitFor('the training child to exit', 30_000, () => (isGone(child) ? true : undefined));

    const stopCheckpoints = checkpointsWrittenSince(cancelledAt).filter((s) => s.batch > 0);
    assert.equal(stopCheckpoints.length, 1, `one mid-epoch checkpoint, written on stopping: ${JSON.stringify(stopCheckpoints)}`);
    const [stop] = stopCheckpoints;
    const position = (epoch: number, batch: number) => epoch * beforeCancel.batchesPerEpoch + batch;
    assert.ok(
      position(stop!.epoch + 1, stop!.batch) >= position(beforeCancel.epoch, beforeCancel.batch),
      `stopped at epoch ${stop!.epoch + 1} batch ${stop!.batch}, not before epoch ${beforeCancel.epoch} batch ${beforeCancel.batch} seen before cancelling`,
    );
  });

  it('cli train starts a run and follows it with a progress bar until the result', async () => {
    await trainWorker();
    const input = { ...trainingInput(), training: { ...trainingInput().training, epochs: 2, batchSize: 64 } };
    // Not spawnSync: this process also runs the workflow worker, which must keep answering.
    const child = spawn(process.execPath, [join(__dirname, '..', 'cli', 'main.js'), 'train', JSON.stringify(input), '--id', `cli-${Date.now()}`], {
      env: { ...process.env, TEMPORAL_ADDRESS: env.address },
    });
    const cli = { stdout: '', stderr: '', status: null as number | null };
    child.stdout.on('data', (d) => (cli.stdout += d));
    child.stderr.on('data', (d) => (cli.stderr += d));
    cli.status = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /Following trainModel cli-/);
    assert.match(cli.stdout, /\] +\d+%  epoch 1\/2  batch \d+\/\d+  loss \d\.\d{4}  acc \d\.\d{3}  \d+ samples\/s  ETA \d+:\d\d/);
    assert.match(cli.stdout, /100%  epoch 2\/2  loss \d\.\d{4}  acc \d\.\d{3}  (evaluating|done)/);
    const result = JSON.parse(cli.stdout.slice(cli.stdout.indexOf('\n{') + 1));
    assert.ok(result.evaluation.accuracy > 0.9);
  });
});

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Training states of the checkpoints stored since `since` (ms), read from the artifact store. */
function checkpointsWrittenSince(since: number): TrainingState[] {
  const root = localArtifactStore().pathOf('sha256');
  return readdirSync(root)
    .flatMap((prefix) => readdirSync(`${root}/${prefix}`).map((name) => `${root}/${prefix}/${name}`))
    .filter((dir) => statSync(dir).isDirectory() && statSync(dir).mtimeMs >= since - 1000 && readdirSync(dir).includes('state.json'))
    .map((dir) => JSON.parse(readFileSync(`${dir}/state.json`, 'utf8')) as TrainingState);
}
