import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';

/** The ApplicationFailure a run failed with: the workflow's own, or the one of the activity that failed it. */
export async function applicationFailureOf(result: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await result.then(
    () => assert.fail('expected the run to fail'),
    (err: unknown) => err,
  );
  assert.ok(error instanceof WorkflowFailedError);
  const cause = error.cause instanceof ActivityFailure ? error.cause.cause : error.cause;
  assert.ok(cause instanceof ApplicationFailure, `expected an ApplicationFailure, got ${cause}`);
  return cause;
}

/** The run's failure, asserted to be a user error: `InvalidInput`, not retried. */
export async function invalidInputOf(result: Promise<unknown>): Promise<ApplicationFailure> {
  const cause = await applicationFailureOf(result);
  assert.equal(cause.type, 'InvalidInput');
  assert.equal(cause.nonRetryable, true);
  return cause;
}
