/**
 * Seconds of training a run that a test interrupts mid-run should last: a checkpoint is heartbeated up to 3 s into a
 * run (one each second, heartbeats throttled to 2 s), and the test must still find the run going once it has seen one.
 * Machines differ up to eightfold in how long an epoch takes, so such a run is sized from a short timed run on the
 * machine at hand instead of fixed.
 */
export const FAULT_RUN_SECONDS = 8;

/** How many units (epochs, steps) of `secondsPerUnit` make FAULT_RUN_SECONDS, within [min, max]. */
export function faultRunUnits(secondsPerUnit: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.ceil(FAULT_RUN_SECONDS / secondsPerUnit)));
}
