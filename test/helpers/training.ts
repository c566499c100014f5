import { execFileSync } from 'node:child_process';

/** The PID of the training child process `parentPid` runs, if any. */
export function trainingChildOf(parentPid: number): number | undefined {
  try {
    const pids = execFileSync('pgrep', ['-P', String(parentPid), '-f', 'train-job'], { encoding: 'utf8' }).trim().split('\n');
    return Number(pids[0]);
  } catch {
    return undefined;
  }
}
