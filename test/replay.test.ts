import { bundleWorkflowCode, Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as workflows from '../workflows';
import { readHistory, recordedHistories, recordedWorkflowId, workflowTypeOf } from '../scripts/histories';

const currentCode: ReplayWorkerOptions = { workflowBundle: { codePath: join(__dirname, '..', 'workflow-bundle.js') } };
const histories = recordedHistories();

/** Fails with the SDK's DeterminismViolationError (naming the command that differs) when `code` would diverge. */
async function replay(options: ReplayWorkerOptions, name: string): Promise<void> {
  const history = readHistory(histories.get(name)!);
  assert.equal(workflowTypeOf(history), name.split('-')[0]);
  await Worker.runReplayHistory(options, history, recordedWorkflowId(name));
}

describe('recorded histories replay on the current workflow code', () => {
  it('every workflow has a recorded history', () => {
    const workflowTypes = Object.entries(workflows).filter(([, value]) => typeof value === 'function').map(([name]) => name);
    const recorded = new Set([...histories.values()].map((path) => workflowTypeOf(readHistory(path))));
    assert.deepEqual([...recorded].sort(), workflowTypes.sort());
  });

  for (const name of histories.keys()) {
    it(`${name} replays its recorded history`, () => replay(currentCode, name));
  }

  it('a workflow whose activities run in another order does not replay', async () => {
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/reordered-train-model'), logger: quietLogger });
    await assert.rejects(replay({ workflowBundle: { code } }, 'trainModel'), (err: Error) => {
      assert.ok(err instanceof DeterminismViolationError, `${err.name}: ${err.message}`);
      return true;
    });
  });
});

const noop = () => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };
