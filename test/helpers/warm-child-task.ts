import { cached } from '../../lib/child-cache';
import { serveChildTask } from '../../lib/child-task';

export interface WarmProbeInput {
  /** Load (and cache) this key, counting real loads. */
  key: string;
  /** Bytes the cached value is said to hold (1 unless set). */
  bytes?: number;
  /** Then wait this long, reporting its process id every 50 ms. */
  waitMs: number;
  /** Then keep a core busy until the process has used this much more CPU time. */
  burnCpuMs?: number;
}

let loads = 0;

/** A child task that says which process served it and how many loads that process has done so far. */
serveChildTask(async (input: WarmProbeInput, report: (pid: number) => void) => {
  await cached(input.key, async () => ({ value: ++loads, bytes: input.bytes ?? 1, dispose: () => undefined }));
  for (let waited = 0; waited < input.waitMs; waited += 50) {
    report(process.pid);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  const until = cpuMs() + (input.burnCpuMs ?? 0);
  while (cpuMs() < until);
  return { pid: process.pid, loads };
});
