import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { trainingProgressQuery, trainModel } from '../workflows';
import { preprocessDigits } from './helpers/digits';
import { runWorkersInProcess, startTemporal, startWorkerProcess, temporaryDataDir, type InProcessWorkers, type WorkerProcess } from './helpers/temporal';

async function waitFor<T>(what: string, timeoutMs: number, poll: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await poll();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

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

  const trainingInput = () => ({
    modelName: 'digits-fault-test',
    manifestUri,
    model: { architecture: 'cnn' as const },
    training: { epochs: 3, batchSize: 16, checkpointEverySeconds: 1, earlyStopping: null },
  });

  it('resumes from the last checkpoint after SIGKILL mid-epoch, redoing less than an epoch, and ends as good as an uninterrupted run', async () => {
    const first = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' });
    trainWorkers.push(first);
    const handle = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `fault-${Date.now()}`, args: [trainingInput()] });

    // Kill in the middle of the second epoch, once a checkpoint from within it has had time to reach the server
    // in a heartbeat (training workers flush heartbeats every 2 s).
    const midEpochCheckpoint = await waitFor('a checkpoint within epoch 2', 120_000, async () => {
      const p = await handle.query(trainingProgressQuery);
      return p.checkpoint && p.checkpoint.epoch === 2 && p.checkpoint.batch > 0 ? p.checkpoint : undefined;
    });
    await new Promise((r) => setTimeout(r, 2500));
    const atKill = await handle.query(trainingProgressQuery);
    assert.equal(atKill.epoch, 2, `epoch 2 should still be running 2.5 s after its first checkpoint (${JSON.stringify(midEpochCheckpoint)})`);
    first.process.kill('SIGKILL');
    await first.stop();
    const second = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' });
    trainWorkers.push(second);

    const result = await handle.result();
    console.log(`killed at epoch ${atKill.epoch} batch ${atKill.batch}/${atKill.batchesPerEpoch}; resumed from ${JSON.stringify(result.resumedFrom)}; accuracy ${result.evaluation.accuracy}`);
    assert.equal(result.resumedFrom.length, 1, 'exactly one resume');
    const resumed = result.resumedFrom[0]!;
    // The query's position lags the training by up to one progress signal, and the heartbeated checkpoint can be
    // newer than that position: compare the resume point with the checkpoint seen before the kill.
    assert.equal(resumed.epoch, 2, 'resumed in the epoch it was killed in');
    assert.ok(resumed.batch >= midEpochCheckpoint.batch && resumed.batch > 0, `resumed from batch ${resumed.batch}, a mid-epoch checkpoint at or after ${midEpochCheckpoint.batch}`);
    assert.ok(atKill.batch - resumed.batch < atKill.batchesPerEpoch, 'less than one epoch redone');
    assert.equal(result.history.length, 3);
    assert.deepEqual((await handle.query(trainingProgressQuery)).resumedFrom, result.resumedFrom);

    const baseline = await env.client.workflow.execute(trainModel, { taskQueue: 'ml-pipeline', workflowId: `baseline-${Date.now()}`, args: [trainingInput()] });
    console.log(`uninterrupted accuracy ${baseline.evaluation.accuracy}`);
    assert.deepEqual(baseline.resumedFrom, []);
    assert.ok(result.evaluation.accuracy > 0.9, `accuracy ${result.evaluation.accuracy}`);
    assert.ok(Math.abs(result.evaluation.accuracy - baseline.evaluation.accuracy) < 0.03, `${result.evaluation.accuracy} vs ${baseline.evaluation.accuracy}`);
  });

  it('stops training within a batch when the workflow is cancelled', async () => {
    const worker = await trainWorker();
    const handle = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `cancel-${Date.now()}`, args: [trainingInput()] });
    await waitFor('training to start', 60_000, async () => ((await handle.query(trainingProgressQuery)).batch > 5 ? true : undefined));
    await handle.cancel();
    const metric = await waitFor('the cancelled training activity', 30_000, async () => {
      const text = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
      return /temporal_ml_activity_executions_total\{activity_type="runTraining",task_queue="ml-train",outcome="cancelled"\} 1/.exec(text)?.[0];
    });
    assert.ok(metric);
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
    assert.match(cli.stdout, /100%  epoch 2\/2  batch (\d+)\/\1/);
    const result = JSON.parse(cli.stdout.slice(cli.stdout.indexOf('\n{') + 1));
    assert.ok(result.evaluation.accuracy > 0.9);
  });
});
