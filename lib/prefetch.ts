/**
 * Yields `prepare(item)` for each item in order, with up to `ahead` more being prepared meanwhile. Stopped early, it
 * waits for those, so nothing is left reading.
 */
export async function* prefetched<I, T>(items: Iterable<I>, prepare: (item: I) => Promise<T>, ahead: number): AsyncGenerator<T> {
  const iterator = items[Symbol.iterator]();
  const pending: Promise<T>[] = [];
  const fill = () => {
    while (pending.length <= ahead) {
      const next = iterator.next();
      if (next.done) return;
      const prepared = prepare(next.value);
      // Failures surface when the batch is taken; until then they must not count as unhandled.
      prepared.catch(() => undefined);
      pending.push(prepared);
    }
  };
  try {
    for (fill(); pending.length > 0; fill()) yield await pending.shift()!;
  } finally {
    await Promise.allSettled(pending);
  }
}
