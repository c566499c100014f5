import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { artifactStore } from '../lib/artifacts';
import { hyperparameterSweep, sweepStatusQuery, type SweepStatus } from '../workflows';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';

describe('hyperparameterSweep through Temporal', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let manifestUri: string;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    env = await startTemporal();
    manifestUri = await writeSyntheticDataset(artifactStore(), 512);
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu', 'ml-train'], { trainSlots: 2 });
  });

  after(async () => {
    await workers.shutdown();
    await env.teardown();
  });

  it('grid-searches in parallel, shows finished trials while running, and picks the best by the declared metric', async () => {
    const handle = await env.client.workflow.start(hyperparameterSweep, {
      taskQueue: 'ml-pipeline',
      workflowId: `sweep-${Date.now()}`,
      args: [
        {
          manifestUri,
          base: { model: { architecture: 'mlp', hiddenUnits: [16] }, training: { epochs: 3, batchSize: 32, earlyStopping: null } },
          // A learning rate of 1e-6 cannot learn this in 3 epochs; 0.01 can.
          space: { 'training.learningRate': [0.000001, 0.01], 'model.dropout': [0, 0.1] },
          parallelism: 2,
        },
      ],
    });
    const seen: SweepStatus[] = [];
    const watching = (async () => {
      for (;;) {
        const status = await handle.query(sweepStatusQuery);
        seen.push(status);
        if (status.finished.length === status.total && status.total > 0) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const result = await handle.result();
    await watching;

    assert.equal(result.trials.length, 4);
    assert.ok(result.trials.every((t) => t.status === 'completed'));
    assert.equal(result.best.assignment['training.learningRate'], 0.01);
    assert.equal(result.best.score, Math.max(...result.trials.map((t) => t.score!)));
    assert.ok(result.best.score! > 0.9, `best validation accuracy ${result.best.score}`);
    assert.ok(seen.some((s) => s.finished.length > 0 && s.finished.length < 4), 'finished trials were visible before the sweep ended');
    assert.ok(seen.some((s) => s.running === 2), 'two trials ran at once');
  });

  it('refuses a space that would make an invalid trial, naming the trial and field', async () => {
    const error = await env.client.workflow
      .execute(hyperparameterSweep, {
        taskQueue: 'ml-pipeline',
        workflowId: `bad-sweep-${Date.now()}`,
        args: [{ manifestUri, space: { 'training.batchSize': [32, -1] } }],
      })
      .then(
        () => assert.fail('should fail'),
        (err: unknown) => err,
      );
    assert.ok(error instanceof WorkflowFailedError);
    assert.match(String(error.cause?.message), /trial 2 .*training\.batchSize/);
  });
});
