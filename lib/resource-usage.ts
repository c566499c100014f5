import { AsyncLocalStorage } from 'node:async_hooks';

/** Resources used on behalf of one activity execution by child processes it started. */
export interface ChildResourceTally {
  cpuSeconds: number;
  peakRssBytes: number;
}

const current = new AsyncLocalStorage<ChildResourceTally>();

/** Runs `fn` with a fresh tally that `recordChildUsage` calls made inside it add to. */
export async function withChildResourceTally<T>(fn: () => Promise<T>): Promise<{ result: T; tally: ChildResourceTally } | { error: unknown; tally: ChildResourceTally }> {
  const tally: ChildResourceTally = { cpuSeconds: 0, peakRssBytes: 0 };
  try {
    return { result: await current.run(tally, fn), tally };
  } catch (error) {
    return { error, tally };
  }
}

export function recordChildUsage(usage: NodeJS.ResourceUsage): void {
  const tally = current.getStore();
  if (!tally) return;
  tally.cpuSeconds += (usage.userCPUTime + usage.systemCPUTime) / 1e6;
  tally.peakRssBytes = Math.max(tally.peakRssBytes, usage.maxRSS * 1024);
}
