import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { artifactStore } from '../lib/artifacts';
import type { TrainModelInput } from '../lib/schemas/train-model';
import type { TrialOutcome } from '../lib/sweep';
import { hyperparameterSweep, trainModel } from '../workflows';
import { preprocessDigits } from './helpers/digits';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';

async function startInput(handle: WorkflowHandle): Promise<TrainModelInput> {
  const started = (await handle.fetchHistory()).events![0]!.workflowExecutionStartedEventAttributes!;
  return defaultPayloadConverter.fromPayload<TrainModelInput>(started.input!.payloads![0]!);
}

describe('hyperparameterSweep with ASHA through Temporal', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let manifestUri: string;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    env = await startTemporal();
    manifestUri = await preprocessDigits(500);
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu', 'ml-train'], { trainSlots: 2 });
  });

  after(async () => {
    await workers.shutdown();
    await env.teardown();
  });

  it('stops trials that fall behind at a rung, continues the others from their checkpoints, and counts trial-epochs', async () => {
    const maxEpochs = 3;
    const handle = await env.client.workflow.start(hyperparameterSweep, {
      taskQueue: 'ml-pipeline',
      workflowId: `asha-${Date.now()}`,
      args: [
        {
          manifestUri,
          base: { model: { architecture: 'mlp', hiddenUnits: [16], dropout: 0 }, training: { batchSize: 32, earlyStopping: null } },
          // A learning rate of 1e-5 learns next to nothing in an epoch; 0.01 learns the digits. The good ones start first, so
          // they fill rung 0's top half before the slow learners report.
          space: { 'training.learningRate': [0.01, 0.00001], 'model.hiddenUnits': [[8], [32]] },
          search: 'asha',
          asha: { maxEpochs, gracePeriod: 1, reductionFactor: 2 },
          parallelism: 2,
          // Promotions carry across runs: 7 or 8 trainings take 3 runs.
          trialsPerRun: 3,
        },
      ],
    });
    const result = await handle.result();
    const table = await artifactStore().readJson<TrialOutcome[]>(result.trialTableUri);

    assert.deepEqual(
      table.map((t) => [t.trial, t.status]),
      [1, 2, 3, 4].map((n) => [n, 'completed']),
    );
    assert.ok(result.runs >= 3, `the sweep continued as new (${result.runs} runs)`);
    // Every trial reports at rung 0; floor(4 / 2) = 2, or 3 when a later trial outranks one already promoted, go on.
    assert.deepEqual(
      result.rungs!.map((r) => r.epochs),
      [1, 2, 3],
    );
    assert.equal(result.rungs![0]!.trials, 4);
    assert.ok(result.rungs![1]!.trials >= 2 && result.rungs![1]!.trials <= 3, `rung 1: ${result.rungs![1]!.trials} trials`);
    assert.ok(result.rungs![2]!.trials >= 1 && result.rungs![2]!.trials < result.rungs![1]!.trials, `rung 2: ${result.rungs![2]!.trials} trials`);

    const stopped = table.filter((t) => t.stoppedEarly);
    assert.ok(stopped.length >= 2, 'trials were stopped early');
    for (const t of table) {
      assert.equal(t.epochs, [1, 2, 3][t.rung!], `trial ${t.trial} trained to its rung's budget`);
      assert.equal(t.stoppedEarly, t.epochs! < maxEpochs);
    }
    // The slow learners stop at the first rung.
    assert.ok(
      table.filter((t) => t.assignment['training.learningRate'] === 0.00001).every((t) => t.rung === 0),
      JSON.stringify(table.map((t) => [t.assignment, t.rung, t.score])),
    );

    // Each rung adds one epoch, so the trial-epochs are the trials at each rung summed: less than every trial to maxEpochs.
    const epochsTrained = table.reduce((sum, t) => sum + t.epochs!, 0);
    assert.equal(result.trialEpochs, epochsTrained);
    assert.equal(
      result.trialEpochs,
      result.rungs!.reduce((sum, r) => sum + r.trials, 0),
    );
    assert.ok(result.trialEpochs < 4 * maxEpochs);

    // The best trial reached the last rung by resuming: the last training started from the previous rung's checkpoint
    // and kept its epochs, it did not train them again.
    assert.equal(result.best.rung, 2);
    assert.deepEqual(result.best, table.find((t) => t.trial === result.best.trial));
    const rung = (k: number) => env.client.workflow.getHandle<typeof trainModel>(k === 0 ? `${handle.workflowId}-trial-${result.best.trial}` : `${handle.workflowId}-trial-${result.best.trial}-rung-${k}`);
    const [first, second, last] = await Promise.all([0, 1, 2].map((k) => rung(k).result()));
    assert.equal(result.best.workflowId, rung(2).workflowId);
    assert.equal((await startInput(rung(1))).resumeFrom, first!.checkpointUri);
    assert.equal((await startInput(rung(2))).resumeFrom, second!.checkpointUri);
    assert.deepEqual(first!.resumedFrom, []);
    assert.deepEqual(last!.resumedFrom, [
      { epoch: 2, batch: 0 },
      { epoch: 3, batch: 0 },
    ]);
    assert.deepEqual(last!.history.slice(0, 2), second!.history);
    assert.deepEqual(second!.history.slice(0, 1), first!.history);
    assert.equal(result.best.score, last!.bestEpoch.validationAccuracy);
    assert.ok(result.best.score! > 0.7, `best validation accuracy ${result.best.score}`);
  });

  it('trainModel refuses a resumeFrom that is not a checkpoint, naming the field, without retrying', async () => {
    const handle = await env.client.workflow.start(trainModel, {
      taskQueue: 'ml-pipeline',
      workflowId: `resume-bad-${Date.now()}`,
      args: [{ manifestUri, model: { architecture: 'mlp', hiddenUnits: [8] }, training: { epochs: 1 }, resumeFrom: manifestUri.replace(/[^/]+$/, 'no-such-checkpoint') }],
    });
    const error = await handle.result().then(
      () => assert.fail('training should fail'),
      (err: unknown) => err,
    );
    assert.ok(error instanceof WorkflowFailedError);
    assert.match(String((error.cause?.cause as Error | undefined)?.message), /^resumeFrom: .*no-such-checkpoint is not a training checkpoint/);
    const attempts = (await handle.fetchHistory()).events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.deepEqual(attempts, [1]);
  });
});
