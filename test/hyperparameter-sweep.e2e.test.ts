import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { artifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import type { HyperparameterSweepInput } from '../lib/schemas/hyperparameter-sweep';
import { gridAssignment, randomAssignment, type TrialOutcome } from '../lib/sweep';
import { hyperparameterSweep, sweepStatusQuery, trainModel, type SweepStatus } from '../workflows';
import { reportDocumentOf } from './helpers/report';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';

/** The worker's ceiling in these tests; the sweeps below ask for more to be refused. */
const MAX_TRIALS = 500;
/** Trials that train for a fraction of a second. */
const tinyTrials = { model: { architecture: 'mlp', hiddenUnits: [8] }, training: { epochs: 1, batchSize: 64, earlyStopping: null } };

async function failureOf(promise: Promise<unknown>): Promise<WorkflowFailedError> {
  const error = await promise.then(
    () => assert.fail('the sweep should fail'),
    (err: unknown) => err,
  );
  assert.ok(error instanceof WorkflowFailedError, `got ${String(error)}`);
  return error;
}

async function eventsOf(handle: WorkflowHandle) {
  return (await handle.fetchHistory()).events!;
}

async function childWorkflowIds(handle: WorkflowHandle): Promise<string[]> {
  return (await eventsOf(handle)).flatMap((e) => (e.startChildWorkflowExecutionInitiatedEventAttributes ? [e.startChildWorkflowExecutionInitiatedEventAttributes.workflowId!] : []));
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('hyperparameterSweep through Temporal', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let manifestUri: string;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    process.env.TEMPORAL_ML_MAX_SWEEP_TRIALS = String(MAX_TRIALS);
    env = await startTemporal();
    manifestUri = await writeSyntheticDataset(artifactStore(), 512);
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu', 'ml-train'], { trainSlots: 2 });
  });

  after(async () => {
    await workers.shutdown();
    await env.teardown();
  });

  const start = (name: string, input: Omit<HyperparameterSweepInput, 'manifestUri'>) =>
    env.client.workflow.start(hyperparameterSweep, { taskQueue: 'ml-pipeline', workflowId: `${name}-${Date.now()}`, args: [{ manifestUri, ...input }] });

  it('grid-searches in parallel, shows finished trials while running, and picks the best by the declared metric', async () => {
    const handle = await start('sweep', {
      base: { model: { architecture: 'mlp', hiddenUnits: [16] }, training: { epochs: 3, batchSize: 32, earlyStopping: null } },
      // A learning rate of 1e-6 cannot learn this in 3 epochs; 0.01 can.
      space: { 'training.learningRate': [0.000001, 0.01], 'model.dropout': [0, 0.1] },
      parallelism: 2,
    });
    const seen: SweepStatus[] = [];
    const watching = (async () => {
      for (;;) {
        const status = await handle.query(sweepStatusQuery);
        seen.push(status);
        if (status.finished === status.total && status.total > 0) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const result = await handle.result();
    await watching;

    const table = await artifactStore().readJson<TrialOutcome[]>(result.trialTableUri);
    assert.deepEqual(
      table.map((t) => [t.trial, t.status]),
      [1, 2, 3, 4].map((n) => [n, 'completed']),
    );
    assert.equal(result.total, 4);
    assert.equal(result.failed, 0);
    assert.equal(result.runs, 1);
    assert.equal(result.best.assignment['training.learningRate'], 0.01);
    assert.equal(result.best.score, Math.max(...table.map((t) => t.score!)));
    assert.deepEqual(result.top, [...table].sort((a, b) => b.score! - a.score! || a.trial - b.trial));
    assert.ok(result.best.score! > 0.9, `best validation accuracy ${result.best.score}`);
    // The score is the figure of the epoch whose weights the trial returned.
    const bestTrial = await env.client.workflow.getHandle<typeof trainModel>(result.best.workflowId).result();
    assert.equal(result.best.score, bestTrial.bestEpoch.validationAccuracy);
    assert.equal(result.best.modelUri, bestTrial.modelUri);
    assert.ok(seen.some((s) => s.finished > 0 && s.finished < 4), 'finished trials were visible before the sweep ended');
    assert.ok(seen.some((s) => s.running === 2), 'two trials ran at once');
  });

  it('refuses a space that would make an invalid trial, naming the trial and field', async () => {
    const error = await failureOf(start('bad-sweep', { space: { 'training.batchSize': [32, -1] } }).then((h) => h.result()));
    assert.match(String(error.cause?.message), /trial 2 .*training\.batchSize/);
  });

  it('continues as new every trialsPerRun trials, carrying the next trial, counts and the best so far', async () => {
    const space = { 'training.learningRate': [0.03, 0.01, 0.003, 0.001], 'model.dropout': [0, 0.1, 0.2] };
    const handle = await start('sweep-chain', { base: tinyTrials, space, search: 'random', trials: 7, seed: 5, trialsPerRun: 3, parallelism: 2 });
    const result = await handle.result();

    // The chain of runs: 3 trials, 3 trials, then the last one.
    const trialsPerRun: number[] = [];
    for (let runId: string | undefined = handle.firstExecutionRunId; runId; ) {
      const run: WorkflowHandle = env.client.workflow.getHandle(handle.workflowId, runId);
      trialsPerRun.push((await childWorkflowIds(run)).length);
      runId = (await eventsOf(run)).find((e) => e.workflowExecutionContinuedAsNewEventAttributes)?.workflowExecutionContinuedAsNewEventAttributes!.newExecutionRunId ?? undefined;
    }
    assert.deepEqual(trialsPerRun, [3, 3, 1]);
    assert.equal(result.runs, 3);
    assert.equal(result.total, 7);

    // Every trial once, with the assignment its index and the seed give, whichever run started it.
    const table = await artifactStore().readJson<TrialOutcome[]>(result.trialTableUri);
    assert.deepEqual(
      table.map((t) => t.trial),
      Array.from({ length: 7 }, (_, i) => i + 1),
    );
    table.forEach((t, i) => assert.deepEqual(t.assignment, randomAssignment(space, 5, i)));
    assert.equal(result.failed, table.filter((t) => t.status === 'failed').length);
    const ranked = table.filter((t) => t.status === 'completed').sort((a, b) => b.score! - a.score! || a.trial - b.trial);
    assert.deepEqual(result.top, ranked.slice(0, 10));
    assert.deepEqual(result.best, ranked[0]);

    // The report charts and tables every trial of every run.
    const [trials] = reportDocumentOf(result).sections;
    assert.deepEqual(trials!.figures.map((figure) => figure.file), ['trials.png']);
    assert.deepEqual(trials!.tables[0]!.rows.map((row) => Number(row[0])), table.map((t) => t.trial));
  });

  it("refuses more trials than the worker's ceiling, naming it, and enumerates a 100^6 grid lazily", async () => {
    const values = (f: (i: number) => unknown) => Array.from({ length: 100 }, (_, i) => f(i));
    const space = {
      'training.learningRate': values((i) => 0.01 + i / 10_000),
      'model.dropout': values((i) => i / 200),
      'training.batchSize': values((i) => 32 + i),
      'training.epochs': values((i) => 1 + i),
      'model.hiddenUnits': values((i) => [8 + i]),
      'training.seed': values((i) => i),
    };
    const base = { model: { architecture: 'mlp' }, training: { earlyStopping: null } };
    const whole = await failureOf(start('sweep-huge', { base, space }).then((h) => h.result()));
    assert.match(String(whole.cause?.message), new RegExp(`trials: the grid has 1000000000000 combinations, more than this worker's maximum of ${MAX_TRIALS} .*TEMPORAL_ML_MAX_SWEEP_TRIALS`));
    const random = await failureOf(start('sweep-many', { base, space, search: 'random', trials: MAX_TRIALS + 1 }).then((h) => h.result()));
    assert.match(String(random.cause?.message), new RegExp(`trials: ${MAX_TRIALS + 1} trials, more than this worker's maximum of ${MAX_TRIALS} `));

    const result = await (await start('sweep-huge-3', { base, space, trials: 3 })).result();
    const table = await artifactStore().readJson<TrialOutcome[]>(result.trialTableUri);
    assert.equal(result.total, 3);
    assert.deepEqual(
      table.map((t) => t.assignment),
      [0, 1, 2].map((i) => gridAssignment(space, i)),
    );
    assert.ok(table.every((t) => t.status === 'completed' && t.epochs === 1));
  });

  it('refuses a validation metric on a dataset without validation images before any trial starts', async () => {
    const store = artifactStore();
    const manifest = await store.readJson<DatasetManifest>(manifestUri);
    const withoutValidation: DatasetManifest = { ...manifest, counts: { ...manifest.counts, validation: 0 }, shards: manifest.shards.filter((s) => s.split !== 'validation') };
    const uri = (await store.putBlob(Buffer.from(JSON.stringify(withoutValidation)), '.json')).uri;
    const handle = await env.client.workflow.start(hyperparameterSweep, {
      taskQueue: 'ml-pipeline',
      workflowId: `sweep-no-validation-${Date.now()}`,
      args: [{ manifestUri: uri, base: tinyTrials, space: { 'model.dropout': [0, 0.1] } }],
    });
    const error = await failureOf(handle.result());
    assert.match(String(error.cause?.message), /metric: validationAccuracy is measured on validation images, and the dataset at .* has none/);
    assert.deepEqual(await childWorkflowIds(handle), []);
  });

  it('cancelling a sweep cancels its running trials and ends it cancelled', async () => {
    const handle = await start('sweep-cancel', {
      base: { model: { architecture: 'mlp', hiddenUnits: [16] }, training: { epochs: 500, batchSize: 16, earlyStopping: null } },
      space: { 'training.learningRate': [0.01, 0.001], 'model.dropout': [0, 0.1] },
      parallelism: 2,
    });
    await waitFor('two trials are training', async () => {
      if ((await handle.query(sweepStatusQuery)).running < 2) return false;
      const trials = await childWorkflowIds(handle);
      const described = await Promise.all(trials.map((id) => env.client.workflow.getHandle(id).describe()));
      return described.filter((d) => d.status.name === 'RUNNING' && (d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'runTraining')).length === 2;
    });
    await handle.cancel();
    const error = await failureOf(handle.result());
    assert.ok(error.cause instanceof CancelledFailure, `the sweep ended with ${String(error.cause)}`);
    assert.equal((await handle.describe()).status.name, 'CANCELLED');

    const trials = await childWorkflowIds(handle);
    assert.equal(trials.length, 2, 'no trial started after the cancellation');
    for (const id of trials) {
      const status = (await env.client.workflow.getHandle(id).describe()).status.name;
      assert.ok(status === 'CANCELLED' || status === 'TERMINATED', `${id} is ${status}`);
    }
  });
});
