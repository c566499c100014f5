/** The innermost message of a failure chain (child workflow, then activity, then what actually went wrong). */
export function rootCauseMessage(err: unknown): string {
  let current = err as Error;
  while (current.cause instanceof Error) current = current.cause;
  return current.message;
}
