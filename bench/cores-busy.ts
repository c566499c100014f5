import { readFileSync } from 'node:fs';

/** Linux's clock ticks per second (USER_HZ), the unit of CPU time in /proc. */
const TICKS_PER_SECOND = 100;

/** CPU seconds a process has used, all its threads together. */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds the machine has spent running anything, every core together (user, nice, system, irq, softirq). */
function machineCpuSeconds(): number {
  const [user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq!) / TICKS_PER_SECOND;
}

export interface CoresBusy<T> {
  value: T;
  /** Per process: CPU-seconds per second. */
  processes: number[];
  /** The same of every other process on the machine. */
  rest: number;
}

/** The cores each of `pids` kept busy while `work` ran, and those everything else did. */
export async function coresBusyDuring<T>(pids: number[], work: () => Promise<T>): Promise<CoresBusy<T>> {
  const started = performance.now();
  const [processes, machine] = [pids.map(processCpuSeconds), machineCpuSeconds()];
  const value = await work();
  const seconds = (performance.now() - started) / 1000;
  const used = pids.map((pid, i) => processCpuSeconds(pid) - processes[i]!);
  return { value, processes: used.map((cpu) => cpu / seconds), rest: (machineCpuSeconds() - machine - used.reduce((a, b) => a + b, 0)) / seconds };
}
