/**
 * Yields `prepare(item)` for each item in order, with up to `ahead` more being prepared meanwhile. Stopped early, it
 * waits for those and `discard`s them, so nothing is left reading.
 */
export async function* prefetched<I, T>(items: Iterable<I>, prepare: (item: I) => Promise<T>, ahead: number, discard: (value: T) => void): AsyncGenerator<T> {
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
    for (const left of await Promise.allSettled(pending)) if (left.status === 'fulfilled') discard(left.value);
  }
}
