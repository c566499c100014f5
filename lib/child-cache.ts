import { settings } from './config';

/**
 * What a warm child process (see WarmChildPool in lib/child-task.ts) keeps between tasks: loaded data by key, up to
 * `TEMPORAL_ML_WARM_CHILD_CACHE_MB`, least recently used first out. What the running task has used is never evicted,
 * so a task may hold more than the budget while it runs; the excess goes when it ends.
 */
interface Entry {
  value: unknown;
  bytes: number;
  dispose: () => void;
  task: number;
}

const entries = new Map<string, Entry>();
let currentTask = 0;
let taskRunning = false;

/** Called by the child harness before each task. */
export function beginCachedTask(): void {
  currentTask++;
  taskRunning = true;
}

/** Called by the child harness after each task: the cache shrinks to its budget, what that task used included. */
export function endCachedTask(): void {
  taskRunning = false;
  evictBeyond(settings().warmChildren.cacheBytes);
}

/** Whether a value is cached under `key`. */
export function isCached(key: string): boolean {
  return entries.has(key);
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
    if (taskRunning && entry.task === currentTask) continue;
    entries.delete(key);
    entry.dispose();
    total -= entry.bytes;
  }
}
