import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure, defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { artifactStore } from '../lib/artifacts';
import type { EvaluationProgress } from '../lib/evaluation/evaluate-job';
import type { TrainModelInput } from '../lib/schemas/train-model';
import { trainModel } from '../workflows';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { waitFor } from './helpers/wait';
import { runWorkersInProcess, startTemporal, startWorkerProcess, temporaryDataDir, type InProcessWorkers, type WorkerProcess } from './helpers/temporal';

/** The latest heartbeat of the workflow's running evaluateModel activity, if any. */
async function evaluationHeartbeat(handle: WorkflowHandle): Promise<EvaluationProgress | undefined> {
  const { raw } = await handle.describe();
  const activity = raw.pendingActivities?.find((a) => a.activityType?.name === 'evaluateModel');
  const payload = activity?.heartbeatDetails?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<EvaluationProgress>(payload) : undefined;
}

async function scrape(worker: WorkerProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
}

function metricValue(metrics: string, line: RegExp): number | undefined {
  const value = line.exec(metrics)?.[1];
  return value === undefined ? undefined : Number(value);
}

/** Longest event-loop stall of the worker since the previous scrape (prom-client resets its histogram on each). */
async function maxEventLoopLagSeconds(worker: WorkerProcess): Promise<number> {
  return metricValue(await scrape(worker), /^nodejs_eventloop_lag_max_seconds (\S+)$/m)!;
}

/** Process ids of the worker's child processes running the evaluation job. */
async function evaluationChildren(worker: WorkerProcess): Promise<number[]> {
  const { stdout } = await promisify(execFile)('ps', ['-o', 'pid=,args=', '--ppid', String(worker.process.pid)]).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .filter((line) => line.includes('evaluation/evaluate-job'))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('evaluateModel runs off the worker event loop (real Temporal server, real worker process)', () => {
  let env: TestWorkflowEnvironment;
  let dataDir: string;
  let manifestUri: string;
  let inProcess: InProcessWorkers;
  let cpuWorker: WorkerProcess;

  before(async () => {
    dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    env = await startTemporal();
    // A quick training run, then an evaluation that takes seconds: 1,000 test images through a wide CNN.
    manifestUri = await writeSyntheticDataset(artifactStore(), 32, { side: 16, testCount: 1000 });
    // Workflows and training here; evaluation alone on the worker process under test.
    inProcess = await runWorkersInProcess(env, ['ml-pipeline', 'ml-train']);
    cpuWorker = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-cpu' });
  });

  after(async () => {
    await cpuWorker?.stop();
    await inProcess?.shutdown();
    await env?.teardown();
  });

  const input = (): TrainModelInput => ({
    modelName: 'evaluation-e2e',
    manifestUri,
    model: { architecture: 'cnn', filters: [128, 128], convsPerBlock: 2, dropout: 0 },
    training: { epochs: 1, batchSize: 16, earlyStopping: null },
  });

  /** The worker's evaluation process left idle by the first test, for the next evaluation. */
  let warmChild: number | undefined;

  it('keeps the worker event loop ticking and heartbeats the child progress while it evaluates', async () => {
    await maxEventLoopLagSeconds(cpuWorker); // measure stalls from here on
    const handle = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `evaluation-loop-${Date.now()}`, args: [input()] });
    const stages = new Set<string>();
    let finished = false;
    const result = handle.result().finally(() => (finished = true));
    while (!finished) {
      const heartbeat = await evaluationHeartbeat(handle);
      if (heartbeat) stages.add(heartbeat.stage);
      await new Promise((r) => setTimeout(r, 100));
    }
    const { evaluation } = await result;
    const lag = await maxEventLoopLagSeconds(cpuWorker);
    const metrics = await scrape(cpuWorker);
    const evaluationSeconds = metricValue(metrics, /^temporal_ml_activity_duration_seconds_sum\{activity_type="evaluateModel",task_queue="ml-cpu",outcome="completed"\} (\S+)$/m)!;
    console.log(`evaluation ${evaluationSeconds.toFixed(2)} s, longest worker event-loop stall ${(lag * 1000).toFixed(0)} ms, heartbeats seen: ${[...stages].join(', ')}`);

    assert.equal(evaluation.count, 1000);
    assert.ok(stages.size > 0, 'the evaluation heartbeats the progress its child reports');
    // On the event loop the whole split's prediction would be one stall, most of the evaluation's duration.
    assert.ok(lag < evaluationSeconds / 10, `the worker's event loop stalled ${lag} s during a ${evaluationSeconds} s evaluation`);
    const idle = await evaluationChildren(cpuWorker);
    assert.equal(idle.length, 1, 'the evaluation process stays, warm, for the next evaluation');
    warmChild = idle[0];
  });

  it('cancellation kills the evaluation child and the activity ends cancelled', async () => {
    const handle = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `evaluation-cancel-${Date.now()}`, args: [input()] });
    await waitFor('the evaluation under way', 300_000, () => evaluationHeartbeat(handle));
    const [child, ...others] = await evaluationChildren(cpuWorker);
    assert.deepEqual([child, others], [warmChild, []], 'the warm evaluation process of the first run evaluates this one');
    // Held mid-evaluation, the child cannot finish before the cancellation reaches the activity.
    process.kill(child!, 'SIGSTOP');
    await handle.cancel();
    await assert.rejects(handle.result(), (err) => err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure);
    process.kill(child!, 'SIGCONT');

    await waitFor('the evaluation child to exit', 60_000, async () => (isRunning(child!) ? undefined : true));
    const cancelled = await waitFor('the cancelled evaluateModel activity', 60_000, async () =>
      metricValue(await scrape(cpuWorker), /^temporal_ml_activity_executions_total\{activity_type="evaluateModel",task_queue="ml-cpu",outcome="cancelled"\} (\S+)$/m),
    );
    assert.equal(cancelled, 1);
  });
});
