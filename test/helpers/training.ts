import { execFileSync } from 'node:child_process';

/** The PIDs of the training child processes `parentPid` runs (busy or, warm, idle). */
export function trainingChildrenOf(parentPid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(parentPid), '-f', 'train-job'], { encoding: 'utf8' }).trim().split('\n').map(Number);
  } catch {
    return [];
  }
}

/** The PID of the training child process `parentPid` runs, if any. */
export function trainingChildOf(parentPid: number): number | undefined {
  return trainingChildrenOf(parentPid)[0];
}
