import { readdirSync, readFileSync } from 'node:fs';

/** Linux's clock ticks per second (USER_HZ), the unit of CPU time in /proc. */
const TICKS_PER_SECOND = 100;

/** A process's state, parent and CPU ticks, from /proc/<pid>/stat. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return [stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ...stat.slice(stat.lastIndexOf(')') + 2).split(' ')];
}

/** CPU seconds a process has used, all its threads together. */
function processCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return (Number(fields[12]) + Number(fields[13])) / TICKS_PER_SECOND;
}

/** CPU seconds the machine has spent running anything, every core together (user, nice, system, irq, softirq). */
function machineCpuSeconds(): number {
  const [user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq!) / TICKS_PER_SECOND;
}

/** The children of this process whose command is `name` (the Temporal dev server is `temporal`). */
export function childProcessesNamed(name: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        const [command, , parent] = statFields(pid);
        return command === name && Number(parent) === process.pid;
      } catch {
        return false; // ended while listed
      }
    });
}

export interface CoresBusy<T> {
  value: T;
  /** Per process watched, by its name: CPU-seconds per second. */
  processes: Record<string, number>;
  /** The same of every other process on the machine. */
  rest: number;
}

/** The cores each process of `watched` (name to pid) kept busy while `work` ran, and those everything else did. */
export async function coresBusyDuring<T>(watched: Record<string, number>, work: () => Promise<T>): Promise<CoresBusy<T>> {
  const entries = Object.entries(watched);
  const started = performance.now();
  const [before, machine] = [entries.map(([, pid]) => processCpuSeconds(pid)), machineCpuSeconds()];
  const value = await work();
  const seconds = (performance.now() - started) / 1000;
  const used = entries.map(([, pid], i) => processCpuSeconds(pid) - before[i]!);
  return {
    value,
    processes: Object.fromEntries(entries.map(([name], i) => [name, used[i]! / seconds])),
    rest: (machineCpuSeconds() - machine - used.reduce((a, b) => a + b, 0)) / seconds,
  };
}
