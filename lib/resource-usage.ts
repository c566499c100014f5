import { AsyncLocalStorage } from 'node:async_hooks';

/** Resources used on behalf of one activity execution by child processes it started. */
export interface ChildResourceTally {
  cpuSeconds: number;
  peakRssBytes: number;
}

const current = new AsyncLocalStorage<ChildResourceTally>();

/** Runs `fn` with a fresh tally that recorders from `childUsageRecorder` made inside it add to. */
export async function withChildResourceTally<T>(fn: () => Promise<T>): Promise<{ result: T; tally: ChildResourceTally } | { error: unknown; tally: ChildResourceTally }> {
  const tally: ChildResourceTally = { cpuSeconds: 0, peakRssBytes: 0 };
  try {
    return { result: await current.run(tally, fn), tally };
  } catch (error) {
    return { error, tally };
  }
}

/**
 * Adds child processes' usage to the tally current where this is called. Bound here, not looked up when the usage
 * arrives: a child's IPC messages run in the context it was forked in, which for a warm child is an earlier task's.
 */
export function childUsageRecorder(): (usage: NodeJS.ResourceUsage) => void {
  const tally = current.getStore();
  return (usage) => {
    if (!tally) return;
    tally.cpuSeconds += (usage.userCPUTime + usage.systemCPUTime) / 1e6;
    tally.peakRssBytes = Math.max(tally.peakRssBytes, usage.maxRSS * 1024);
  };
}

/** This process's usage since `before` (since it started, without one): CPU time the difference, the peak resident set the process's. */
export function usageSince(before: NodeJS.ResourceUsage | undefined): NodeJS.ResourceUsage {
  const now = process.resourceUsage();
  if (!before) return now;
  return { ...now, userCPUTime: now.userCPUTime - before.userCPUTime, systemCPUTime: now.systemCPUTime - before.systemCPUTime };
}
