export interface ThrottleOptions {
  /** Report once this many steps have passed since the last report... */
  everyItems: number;
  /** ...or once this many milliseconds have, whichever comes first. */
  everyMs: number;
  now?: () => number;
}

/**
 * Wraps `report` for calling on every step of a loop (or every few, saying how many items they took): it reports every
 * `everyItems` items or every `everyMs` milliseconds, whichever comes first, so a fast loop does not flood it and a
 * slow one still reports as it goes.
 */
export function throttled<T>(report: (details: T) => void, { everyItems, everyMs, now = Date.now }: ThrottleOptions): (details: T, items?: number) => void {
  let steps = 0;
  let last = now();
  return (details, items = 1) => {
    steps += items;
    const time = now();
    if (steps < everyItems && time - last < everyMs) return;
    steps = 0;
    last = time;
    report(details);
  };
}
