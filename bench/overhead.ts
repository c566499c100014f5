/**
 * `npm run bench:overhead`: what Temporal adds to an `mlPipeline` run. The same input runs through Temporal (a real
 * dev server and the production worker process) and as a plain script that calls the same activity functions in order
 * in this process (batches with the same parallelism), in one run: three rounds (BENCH_ROUNDS), each timing both back
 * to back, and the median of the rounds' ratios. Prints where the difference goes, read from the runs' histories:
 * scheduling latency per activity, workflow tasks, child workflow starts, payload conversion, child-process start.
 *
 * The input is mlPipeline's defaults (3,000 built-in digits, the CNN, 5 epochs); BENCH_FULL=1 runs all 70,000
 * Fashion-MNIST images instead (`npm run provision:fashion-mnist`). Targets: Temporal adds at most 5% to the default
 * run and 1% to the full one.
 */
import type { Client, WorkflowClient } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { History } from '@temporalio/common/lib/proto-utils';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateModel, listDataset, preprocessBatch, runTraining, writeManifest } from '../activities';
import { mapWithConcurrency } from '../lib/concurrency';
import { mlPipelineInputSchema, type MlPipelineConfig, type MlPipelineInput } from '../lib/schemas/ml-pipeline';
import { startTemporal } from '../workers/in-process';
import { mlPipeline } from '../workflows';
import { median } from '../lib/median';

const EventType = temporal.api.enums.v1.EventType;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const FULL = process.env.BENCH_FULL === '1';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SOURCE = FULL ? 'builtin:fashion-mnist' : 'builtin:mnist-digits';
const INPUT: MlPipelineInput = FULL ? { dataset: { source: SOURCE, maxImages: null } } : {};
/**
 * Run once on each side first, not timed: a worker's first workflow task loads the workflow bundle (about 0.7 s), and
 * either side's first run writes out the built-in dataset and pages it in. Production workers are long-lived.
 */
const WARM_UP: MlPipelineInput = { dataset: { source: SOURCE, maxImages: 200 }, training: { epochs: 1 } };
const TARGET = FULL ? 1.01 : 1.05;

interface Timed {
  name: string;
  seconds: number;
}

/** The pipeline without Temporal: the workflows' activity calls, in their order, on the activities' own code. */
async function plainPipeline(config: MlPipelineConfig, client: Client): Promise<{ seconds: number; steps: Timed[] }> {
  const steps: Timed[] = [];
  const step = async <P extends unknown[], R>(name: string, fn: (...args: P) => Promise<R>, ...args: P): Promise<R> => {
    const started = performance.now();
    // Training's progress signals go to a workflow that does not exist and are dropped, as the activity drops lost ones.
    const result = (await new MockActivityEnvironment(undefined, { client }).run(fn, ...args)) as R;
    steps.push({ name, seconds: (performance.now() - started) / 1000 });
    return result;
  };
  const started = performance.now();
  const { dataset, preprocess: spec, batching } = config;
  const listing = await step('listDataset', listDataset, { dataset, spec, batching });
  const batchNumbers = Array.from({ length: listing.batches }, (_, batch) => batch);
  await mapWithConcurrency(batchNumbers, batching.parallelism, (batch) => step('preprocessBatch', preprocessBatch, { listingUri: listing.listingUri, batch, spec }));
  const { manifestUri } = await step('writeManifest', writeManifest, { listingUri: listing.listingUri, spec });
  const trained = await step('runTraining', runTraining, { modelName: config.modelName, manifestUri, model: config.model, training: config.training });
  await step('evaluateModel', evaluateModel, { modelName: config.modelName, modelUri: trained.modelUri, manifestUri });
  return { seconds: (performance.now() - started) / 1000, steps };
}

/** The production worker (`dist/workers/main.js`) on all queues, with as many `ml-cpu` slots as batches in flight. */
async function startWorker(address: string, cpuSlots: number): Promise<{ process: ChildProcess; seconds: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [join(__dirname, '..', 'workers', 'main.js')], {
    env: { ...process.env, TEMPORAL_ADDRESS: address, METRICS_HOST: '127.0.0.1', METRICS_PORT: '0', SDK_METRICS_PORT: '0', CPU_ACTIVITY_SLOTS: String(cpuSlots) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (data) => {
      output += data;
      if (output.includes('Worker connected')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited with code ${code}:\n${output}`)));
  });
  return { process: child, seconds: (performance.now() - started) / 1000 };
}

interface ActivityRun {
  type: string;
  scheduled: number;
  started: number;
  completed: number;
}

interface Orchestration {
  activities: ActivityRun[];
  workflowTasks: { count: number; runningMs: number; longestMs: number; waitingMs: number };
  childStartsMs: number[];
  payloads: Payload[];
  first: number;
  last: number;
}

/** Activities, workflow tasks, child starts and payloads of the given histories, with their event times in ms. */
function orchestration(histories: History[]): Orchestration {
  const result: Orchestration = { activities: [], workflowTasks: { count: 0, runningMs: 0, longestMs: 0, waitingMs: 0 }, childStartsMs: [], payloads: [], first: Infinity, last: 0 };
  for (const history of histories) {
    const events = history.events ?? [];
    const byId = new Map<number, HistoryEvent>(events.map((e) => [Number(e.eventId), e]));
    const at = (id: unknown) => tsToMs(byId.get(Number(id))!.eventTime);
    const childInitiated = new Map<string, number>();
    for (const event of events) {
      const time = tsToMs(event.eventTime);
      result.first = Math.min(result.first, time);
      result.last = Math.max(result.last, time);
      collectPayloads(event, result.payloads);
      switch (event.eventType) {
        case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
          const { scheduledEventId, startedEventId } = event.activityTaskCompletedEventAttributes!;
          const type = byId.get(Number(scheduledEventId))!.activityTaskScheduledEventAttributes!.activityType!.name!;
          result.activities.push({ type, scheduled: at(scheduledEventId), started: at(startedEventId), completed: time });
          break;
        }
        case EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: {
          const { scheduledEventId, startedEventId } = event.workflowTaskCompletedEventAttributes!;
          result.workflowTasks.count++;
          result.workflowTasks.runningMs += time - at(startedEventId);
          result.workflowTasks.longestMs = Math.max(result.workflowTasks.longestMs, time - at(startedEventId));
          result.workflowTasks.waitingMs += at(startedEventId) - at(scheduledEventId);
          break;
        }
        case EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
          childInitiated.set(event.startChildWorkflowExecutionInitiatedEventAttributes!.workflowId!, time);
          break;
        case EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED: {
          const id = event.childWorkflowExecutionStartedEventAttributes!.workflowExecution!.workflowId!;
          result.childStartsMs.push(time - childInitiated.get(id)!);
          break;
        }
      }
    }
  }
  result.activities.sort((a, b) => a.scheduled - b.scheduled);
  return result;
}

function collectPayloads(value: unknown, into: Payload[]): void {
  if (!value || typeof value !== 'object' || ArrayBuffer.isView(value)) return;
  for (const [key, field] of Object.entries(value)) {
    if (key === 'payloads' && Array.isArray(field)) into.push(...(field as Payload[]));
    else collectPayloads(field, into);
  }
}

/** Milliseconds within [first, last] during which no activity was executing. */
function timeOutsideActivities(o: Orchestration): number {
  let covered = 0;
  let end = o.first;
  for (const { started, completed } of [...o.activities].sort((a, b) => a.started - b.started)) {
    if (completed > end) {
      covered += completed - Math.max(started, end);
      end = completed;
    }
  }
  return o.last - o.first - covered;
}

/** Milliseconds to decode and re-encode every payload once, as a worker does with each input and result (warm). */
function payloadConversionMs(payloads: Payload[]): number {
  const convertAll = () => payloads.forEach((payload) => defaultPayloadConverter.toPayload(defaultPayloadConverter.fromPayload(payload)));
  convertAll();
  const started = performance.now();
  convertAll();
  return performance.now() - started;
}

/** Seconds for a fresh Node process to load native TensorFlow: what each training attempt's child pays first. */
function childProcessStartSeconds(): number {
  const started = performance.now();
  const child = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(require.resolve('../lib/tf'))}).tensorflow()`], { stdio: 'ignore' });
  if (child.status !== 0) throw new Error(`loading TensorFlow in a child process failed (${child.status})`);
  return (performance.now() - started) / 1000;
}

async function histories(client: WorkflowClient, workflowId: string): Promise<History[]> {
  return Promise.all([workflowId, `${workflowId}-preprocess`, `${workflowId}-train`].map((id) => client.getHandle(id).fetchHistory()));
}

interface Round {
  plain: { seconds: number; steps: Timed[] };
  temporal: { seconds: number; orchestration: Orchestration; clientMs: number };
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function report(round: Round): string {
  const o = round.temporal.orchestration;
  const lines: string[] = [];
  const plainByType = new Map<string, number[]>();
  for (const { name, seconds } of round.plain.steps) plainByType.set(name, [...(plainByType.get(name) ?? []), seconds]);
  lines.push('| activity | plain script | in the worker | scheduled -> started |', '|---|---|---|---|');
  const seen = new Map<string, number>();
  for (const a of o.activities) {
    const index = seen.get(a.type) ?? 0;
    seen.set(a.type, index + 1);
    const plain = plainByType.get(a.type)?.[index];
    lines.push(`| ${a.type} | ${plain === undefined ? '' : `${plain.toFixed(2)} s`} | ${s(a.completed - a.started)} | ${(a.started - a.scheduled).toFixed(0)} ms |`);
  }
  const outside = timeOutsideActivities(o);
  const payloadBytes = o.payloads.reduce((n, p) => n + (p.data?.byteLength ?? 0), 0);
  lines.push(
    '',
    `Temporal run ${s(round.temporal.seconds * 1000)} against ${s(round.plain.seconds * 1000)} plain (+${s((round.temporal.seconds - round.plain.seconds) * 1000)}):`,
    `  no activity executing for ${s(outside)} of the ${s(o.last - o.first)} between the first and last history events, of which:`,
    `    activity scheduling (scheduled -> started): ${o.activities.map((a) => (a.started - a.scheduled).toFixed(0)).join(' + ')} ms (batches overlap)`,
    `    ${o.workflowTasks.count} workflow tasks: ${o.workflowTasks.runningMs.toFixed(0)} ms running (the longest ${o.workflowTasks.longestMs.toFixed(0)} ms), ${o.workflowTasks.waitingMs.toFixed(0)} ms waiting for a worker`,
    `    child workflow starts (initiated -> started): ${o.childStartsMs.map((ms) => ms.toFixed(0)).join(' + ')} ms`,
    `  client: start request and result delivery ${round.temporal.clientMs.toFixed(0)} ms outside the history`,
    `  payload conversion: ${o.payloads.length} payloads, ${(payloadBytes / 1024).toFixed(1)} KiB, ${payloadConversionMs(o.payloads).toFixed(1)} ms to decode and encode each once`,
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'temporal-ml-bench-'));
  process.env.TEMPORAL_ML_DATASETS_ROOT ??= join(process.env.TEMPORAL_ML_DATA_DIR ?? '.data', 'datasets');
  process.env.TEMPORAL_ML_DATA_DIR = dataDir;
  const artifacts = join(dataDir, 'artifacts');
  const config = mlPipelineInputSchema.parse(INPUT);
  const env = await startTemporal();
  const childStart = childProcessStartSeconds();
  const worker = await startWorker(env.address, config.batching.parallelism);
  console.log(`Input ${JSON.stringify(INPUT)}; worker process started in ${worker.seconds.toFixed(1)} s (not counted); rounds: ${ROUNDS}`);
  const rounds: Round[] = [];
  try {
    await plainPipeline(mlPipelineInputSchema.parse(WARM_UP), env.client);
    await env.client.workflow.execute(mlPipeline, { taskQueue: 'ml-pipeline', workflowId: `bench-overhead-warm-up-${Date.now()}`, args: [WARM_UP] });
    const viaTemporal = async (round: number): Promise<Round['temporal']> => {
      await rm(artifacts, { recursive: true, force: true });
      const workflowId = `bench-overhead-${round}-${Date.now()}`;
      const started = performance.now();
      await env.client.workflow.execute(mlPipeline, { taskQueue: 'ml-pipeline', workflowId, args: [INPUT] });
      const seconds = (performance.now() - started) / 1000;
      const o = orchestration(await histories(env.client.workflow, workflowId));
      return { seconds, orchestration: o, clientMs: seconds * 1000 - (o.last - o.first) };
    };
    const plainScript = async () => {
      await rm(artifacts, { recursive: true, force: true });
      return plainPipeline(config, env.client);
    };
    for (let round = 1; round <= ROUNDS; round++) {
      // The machine's speed drifts: every other round runs Temporal first, so neither side always gets the first slot.
      let temporalRun = round % 2 === 0 ? await viaTemporal(round) : undefined;
      const plain = await plainScript();
      temporalRun ??= await viaTemporal(round);
      rounds.push({ plain, temporal: temporalRun });
      console.log(`round ${round}: plain script ${plain.seconds.toFixed(2)} s, Temporal ${temporalRun.seconds.toFixed(2)} s, ${(temporalRun.seconds / plain.seconds).toFixed(3)}x`);
    }
  } finally {
    const exited = new Promise((resolve) => worker.process.once('exit', resolve));
    worker.process.kill('SIGTERM');
    await exited;
    await env.teardown();
    await rm(dataDir, { recursive: true, force: true });
  }
  const ratios = rounds.map((r) => r.temporal.seconds / r.plain.seconds);
  const ratio = median(ratios);
  const idle = median(rounds.map((r) => timeOutsideActivities(r.temporal.orchestration) / 1000 / r.plain.seconds));
  console.log(`\nWhere the time went in the median round:\n${report(rounds[ratios.indexOf(ratio)]!)}`);
  console.log(`  child-process start (Node + native TensorFlow), paid by both sides per training attempt: ${childStart.toFixed(2)} s`);
  console.log(
    `\nTemporal / plain script: ${ratio.toFixed(3)}x, median of ${ROUNDS} rounds (${ratios.map((r) => r.toFixed(3)).join(', ')}); ` +
      `target at most ${TARGET}x: ${ratio <= TARGET ? 'met' : 'missed'}`,
  );
  console.log(`Time with no activity executing in the Temporal run: ${(idle * 100).toFixed(1)}% of the plain run's wall time (median).`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
