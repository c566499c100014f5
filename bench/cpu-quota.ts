import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** cgroup v1's CPU controller, where Linux caps a group of processes' CPU time per period. */
const CPU_CONTROLLER = '/sys/fs/cgroup/cpu';
/** A short period, so that a capped process is held back in slices of a few milliseconds, not in long pauses. */
const PERIOD_US = 10_000;

/** Whether this machine lets this process cap other processes' CPU time (cgroup v1, and the right to write there). */
export function cpuQuotasWork(): boolean {
  const probe = join(CPU_CONTROLLER, `temporal-ml-bench-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    writeFileSync(join(probe, 'cpu.cfs_quota_us'), String(PERIOD_US));
    return true;
  } catch {
    return false;
  } finally {
    if (existsSync(probe)) rmdirSync(probe);
  }
}

/**
 * Caps process `pid`, all its threads, to `cores` of CPU time (0.7: 7 ms of every 10). Returns a function that lifts
 * the cap, once the process has ended.
 */
export function capCpu(pid: number, cores: number, name: string): () => void {
  const group = join(CPU_CONTROLLER, `temporal-ml-bench-${name}-${process.pid}`);
  mkdirSync(group, { recursive: true });
  writeFileSync(join(group, 'cpu.cfs_period_us'), String(PERIOD_US));
  writeFileSync(join(group, 'cpu.cfs_quota_us'), String(Math.round(cores * PERIOD_US)));
  writeFileSync(join(group, 'cgroup.procs'), String(pid));
  return () => {
    if (existsSync(group)) rmdirSync(group);
  };
}
