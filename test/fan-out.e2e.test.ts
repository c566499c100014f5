import { WorkflowFailedError } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fanOutProbe } from './fixtures/fan-out-probe';
import { startTemporal } from './helpers/temporal';

const TASK_QUEUE = 'fan-out-probe';

/**
 * The fan-out every workflow uses, on a real server: a probe workflow fans out a step activity whose behaviour each
 * test sets, and the steps record what happened to them.
 */
describe('fanOut (real Temporal server)', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let behaviour: (index: number) => Promise<void>;
  let started: number[];
  let inFlight = 0;
  let mostInFlight = 0;
  let cancelled: number[];

  before(async () => {
    env = await startTemporal();
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/fan-out-probe') });
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: TASK_QUEUE,
      workflowBundle: { code },
      activities: {
        async step(index: number) {
          started.push(index);
          mostInFlight = Math.max(mostInFlight, ++inFlight);
          try {
            await behaviour(index);
          } finally {
            inFlight--;
          }
        },
      },
    });
    running = worker.run();
  });

  beforeEach(() => {
    started = [];
    cancelled = [];
    mostInFlight = 0;
  });

  after(async () => {
    worker.shutdown();
    await running;
    await env.teardown();
  });

  const run = (...args: Parameters<typeof fanOutProbe>) =>
    env.client.workflow.execute(fanOutProbe, { taskQueue: TASK_QUEUE, workflowId: `fan-out-${Math.random().toString(36).slice(2)}`, args });

  /** The step indices a run scheduled, in the order its history records them. */
  async function scheduled(...args: Parameters<typeof fanOutProbe>): Promise<{ result: number; order: number[] }> {
    const handle = await env.client.workflow.start(fanOutProbe, { taskQueue: TASK_QUEUE, workflowId: `fan-out-${Math.random().toString(36).slice(2)}`, args });
    const result = await handle.result();
    const events = (await handle.fetchHistory()).events ?? [];
    const order = events.flatMap((event) => {
      const data = event.activityTaskScheduledEventAttributes?.input?.payloads?.[0]?.data;
      return data ? [JSON.parse(Buffer.from(data).toString('utf8')) as number] : [];
    });
    return { result, order };
  }

  /** A step that heartbeats until it is cancelled, and records that it was. */
  async function untilCancelled(index: number): Promise<void> {
    const context = Context.current();
    const beat = setInterval(() => context.heartbeat(), 200);
    try {
      await context.cancelled;
    } catch (err) {
      cancelled.push(index);
      throw err;
    } finally {
      clearInterval(beat);
    }
  }

  it('starts every step in index order, never more than the parallelism at once', async () => {
    behaviour = () => new Promise((r) => setTimeout(r, 50));
    const { result, order } = await scheduled(10, 3);
    assert.equal(result, 10);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(started.sort((a, b) => a - b), order);
    assert.equal(mostInFlight, 3);
  });

  it('stops starting steps when told to, and returns the first index not started', async () => {
    behaviour = async () => undefined;
    const { result, order } = await scheduled(10, 2, 4);
    assert.equal(result, 4);
    assert.deepEqual(order, [0, 1, 2, 3]);
  });

  it('cancels the steps still running at the first failure, and throws it once they have stopped', { timeout: 60_000 }, async () => {
    behaviour = async (index) => {
      if (index < 2) return untilCancelled(index);
      // The third step fails once both others are running.
      while (inFlight < 3) await new Promise((r) => setTimeout(r, 20));
      throw ApplicationFailure.nonRetryable(`step ${index} failed`, 'StepFailed');
    };
    const error = await run(6, 3).then(
      () => assert.fail('the fan-out should have failed'),
      (err: unknown) => err,
    );
    assert.ok(error instanceof WorkflowFailedError);
    assert.ok(error.cause instanceof ActivityFailure);
    assert.equal((error.cause.cause as ApplicationFailure).message, 'step 2 failed');
    assert.deepEqual(cancelled.sort((a, b) => a - b), [0, 1]);
    assert.deepEqual(started.sort((a, b) => a - b), [0, 1, 2], 'no step starts after the failure');
    assert.equal(inFlight, 0);
  });
});
