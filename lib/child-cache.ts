import { settings } from './config';

/**
 * What a warm child process (see WarmChildPool in lib/child-task.ts) keeps between tasks: loaded data by key, up to
 * `TEMPORAL_ML_WARM_CHILD_CACHE_MB`, least recently used first out. What the current task has used is never evicted,
 * so a task may hold more than the budget while it runs; the excess goes when a later task loads something else.
 */
interface Entry {
  value: unknown;
  bytes: number;
  dispose: () => void;
  task: number;
}

const entries = new Map<string, Entry>();
let currentTask = 0;

/** Called by the child harness before each task. */
export function beginCachedTask(): void {
  currentTask++;
}

/** The value cached under `key`, else `load()`'s, cached (when it fits the budget) for later tasks. */
export async function cached<T>(key: string, load: () => Promise<{ value: T; bytes: number; dispose: () => void }>): Promise<T> {
  const hit = entries.get(key);
  if (hit) {
    entries.delete(key);
    entries.set(key, { ...hit, task: currentTask });
    return hit.value as T;
  }
  const loaded = await load();
  entries.set(key, { ...loaded, task: currentTask });
  evictBeyond(settings().warmChildren.cacheBytes);
  return loaded.value;
}

function evictBeyond(budget: number): void {
  let total = [...entries.values()].reduce((sum, entry) => sum + entry.bytes, 0);
  for (const [key, entry] of entries) {
    if (total <= budget) return;
    if (entry.task === currentTask) continue;
    entries.delete(key);
    entry.dispose();
    total -= entry.bytes;
  }
}
