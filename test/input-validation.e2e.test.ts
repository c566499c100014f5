import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';

describe('mlPipeline rejects bad input fast, naming the field', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;

  before(async () => {
    const dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    mkdirSync(join(dataDir, 'datasets', 'no-classes'), { recursive: true });
    env = await startTemporal();
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
  });

  after(async () => {
    await workers.shutdown();
    await env.teardown();
  });

  async function failureOf(input: unknown): Promise<{ failure: ApplicationFailure; attempts: number; retryState?: RetryState }> {
    const handle = await env.client.workflow.start('mlPipeline', {
      taskQueue: 'ml-pipeline',
      workflowId: `bad-input-${Math.random().toString(36).slice(2)}`,
      args: [input],
    });
    const error = await handle.result().then(
      () => assert.fail('the workflow should have failed'),
      (err: unknown) => err,
    );
    assert.ok(error instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${error}`);
    let cause = error.cause;
    let retryState: RetryState | undefined;
    // Dataset problems surface in the preprocessDataset child workflow's activities.
    const child = cause instanceof ChildWorkflowFailure ? cause.execution!.workflowId : undefined;
    if (cause instanceof ChildWorkflowFailure) cause = cause.cause;
    if (cause instanceof ActivityFailure) {
      retryState = cause.retryState;
      cause = cause.cause;
    }
    assert.ok(cause instanceof ApplicationFailure, `expected ApplicationFailure, got ${cause}`);
    assert.equal(cause.nonRetryable, true);
    const history = await (child ? env.client.workflow.getHandle(child) : handle).fetchHistory();
    const attempts = history.events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
    return { failure: cause, attempts: Math.max(0, ...attempts), retryState };
  }

  it('names an unknown field', async () => {
    const { failure } = await failureOf({ trainng: { epochs: 2 } });
    assert.equal(failure.type, 'InvalidInput');
    assert.match(failure.message, /trainng: unknown field/);
  });

  it('names a field of the wrong type, and every bad field at once', async () => {
    const { failure } = await failureOf({ training: { epochs: 'five' }, model: { architecture: 'transformer' } });
    assert.match(failure.message, /training\.epochs: .*number/i);
    assert.match(failure.message, /model\.architecture: .*"mlp"/);
  });

  it('names a dataset folder that does not exist, without retrying the activity', async () => {
    const { failure, attempts, retryState } = await failureOf({ dataset: { source: 'no/such/folder' } });
    assert.match(failure.message, /^dataset\.source: no folder at .*no\/such\/folder/);
    assert.equal(attempts, 1);
    assert.equal(retryState, RetryState.NON_RETRYABLE_FAILURE);
  });

  it('refuses a dataset path outside the datasets root', async () => {
    const { failure, attempts } = await failureOf({ dataset: { source: '../../../etc' } });
    assert.match(failure.message, /^dataset\.source: .*outside/);
    assert.equal(attempts, 1);
  });

  it('refuses a folder without class sub-folders', async () => {
    const { failure } = await failureOf({ dataset: { source: 'no-classes' } });
    assert.match(failure.message, /^dataset\.source: .*no class sub-folders/);
  });
});
