import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';

export const INVALID_INPUT = 'InvalidInput';

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${[...path, key].join('.')}: unknown field`).join('; ');
  }
  return `${path.length ? path.join('.') : '(input)'}: ${issue.message}`;
}

/**
 * Parses a workflow's JSON input, filling in defaults. Invalid input is a user error: a non-retryable
 * ApplicationFailure whose message names every offending field.
 */
export function parseWorkflowInput<S extends z.ZodType>(workflowType: string, schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map(describeIssue);
  throw ApplicationFailure.create({
    type: INVALID_INPUT,
    nonRetryable: true,
    message: `Invalid ${workflowType} input: ${problems.join('; ')}`,
    details: [problems],
  });
}

/** A user error found by an activity (a missing dataset folder, say): fail without retrying, naming the field. */
export function invalidInput(field: string, problem: string): ApplicationFailure {
  return ApplicationFailure.create({ type: INVALID_INPUT, nonRetryable: true, message: `${field}: ${problem}` });
}
