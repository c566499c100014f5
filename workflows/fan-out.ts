import { CancellationScope } from '@temporalio/workflow';

/**
 * Runs `work` for each index from `from` up to `to`, at most `parallelism` at once, starting them in index order, until
 * `stopStarting()` says to start no more (Temporal suggesting continue-as-new, say). The first failure cancels the work
 * still running and is thrown once every lane has stopped, so nothing is left running behind a failed fan-out.
 * Returns the first index not started, where a continued run picks up. Batches and trials fan out through it.
 */
export async function fanOut(
  from: number,
  to: number,
  parallelism: number,
  work: (index: number) => Promise<void>,
  stopStarting: () => boolean = () => false,
): Promise<number> {
  const scope = new CancellationScope();
  let next = from;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (next < to && !failure && !stopStarting()) await work(next++);
  };
  await scope.run(() =>
    Promise.all(
      Array.from({ length: Math.max(0, Math.min(parallelism, to - from)) }, () =>
        lane().catch((error: unknown) => {
          failure ??= { error };
          scope.cancel();
        }),
      ),
    ),
  );
  if (failure) throw failure.error;
  return next;
}
