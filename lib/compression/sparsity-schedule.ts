/**
 * TensorFlow Model Optimization's `PolynomialDecay` pruning schedule: sparsity rises from `initialSparsity` at
 * `beginStep` to `finalSparsity` at `endStep` as
 *   final + (initial - final) * (1 - (step - begin) / (end - begin)) ** power,
 * with the fraction clamped to [0, 1]; masks are updated only on steps in [begin, end] that are a multiple of
 * `frequency` after `beginStep`. Steps count optimizer steps from 0: step s is the (s+1)-th batch.
 */
export interface PolynomialDecay {
  initialSparsity: number;
  finalSparsity: number;
  beginStep: number;
  endStep: number;
  frequency: number;
  power: number;
}

/** Throws when the schedule is one TensorFlow Model Optimization refuses (or one that would divide by zero). */
export function validatePolynomialDecay(schedule: PolynomialDecay): void {
  const { initialSparsity, finalSparsity, beginStep, endStep, frequency } = schedule;
  if (!Number.isInteger(beginStep) || beginStep < 0) throw new RangeError(`beginStep must be an integer >= 0, got ${beginStep}`);
  if (!Number.isInteger(endStep) || endStep <= beginStep) throw new RangeError(`endStep must be an integer after beginStep (${beginStep}), got ${endStep}`);
  if (!Number.isInteger(frequency) || frequency < 1) throw new RangeError(`frequency must be an integer >= 1, got ${frequency}`);
  for (const [name, value] of [['initialSparsity', initialSparsity], ['finalSparsity', finalSparsity]] as const) {
    if (!(value >= 0 && value < 1)) throw new RangeError(`${name} must be in [0, 1), got ${value}`);
  }
}

/** The sparsity the schedule asks for at `step` (whether or not masks are updated on it). */
export function sparsityAt(schedule: PolynomialDecay, step: number): number {
  const { initialSparsity, finalSparsity, beginStep, endStep, power } = schedule;
  const progress = Math.min(1, Math.max(0, (step - beginStep) / (endStep - beginStep)));
  return finalSparsity + (initialSparsity - finalSparsity) * (1 - progress) ** power;
}

/** Whether masks are recomputed at `step`. */
export function updatesMasksAt(schedule: PolynomialDecay, step: number): boolean {
  const { beginStep, endStep, frequency } = schedule;
  return step >= beginStep && step <= endStep && (step - beginStep) % frequency === 0;
}

/**
 * How many of `size` weights stay at `sparsity`, as TensorFlow Model Optimization counts them: round half to even
 * of size * (1 - sparsity), and at least one.
 */
export function keptWeights(size: number, sparsity: number): number {
  const exact = size * (1 - sparsity);
  const floor = Math.floor(exact);
  const diff = exact - floor;
  const rounded = diff > 0.5 || (diff === 0.5 && floor % 2 === 1) ? floor + 1 : floor;
  return Math.max(1, rounded);
}

/** A schedule setting that cannot work with this fine-tuning run; `field` names it. */
export class PruningScheduleError extends Error {
  override name = 'PruningScheduleError';
  constructor(
    readonly field: 'beginStep' | 'endStep' | 'frequency',
    message: string,
  ) {
    super(message);
  }
}

/** Share of the fine-tuning steps by which the final sparsity is reached when no `endStep` is given. */
const DEFAULT_END_FRACTION = 0.7;

/**
 * The schedule for a fine-tuning run of `steps` optimizer steps, refusing one whose masks would never reach
 * `finalSparsity` in it. Without an `endStep`, the last mask update at or before 70% of the run (at least one
 * `frequency` after `beginStep`).
 */
export function scheduleForRun(settings: Omit<PolynomialDecay, 'endStep'> & { endStep: number | null }, steps: number): PolynomialDecay {
  const { beginStep, frequency } = settings;
  const run = `fine-tuning runs ${steps} steps (0 to ${steps - 1})`;
  if (beginStep >= steps) throw new PruningScheduleError('beginStep', `${run}; beginStep ${beginStep} is past its end`);
  let endStep = settings.endStep;
  if (endStep === null) {
    const intervals = Math.max(1, Math.floor((Math.round(DEFAULT_END_FRACTION * steps) - beginStep) / frequency));
    endStep = beginStep + intervals * frequency;
    if (endStep >= steps) {
      throw new PruningScheduleError('frequency', `${run}; masks first update again at step ${endStep}, after its end: lower frequency or fine-tune longer`);
    }
  } else if (endStep >= steps) {
    throw new PruningScheduleError('endStep', `${run}; endStep ${endStep} must be below ${steps} for finalSparsity to be reached`);
  } else if ((endStep - beginStep) % frequency !== 0) {
    throw new PruningScheduleError(
      'endStep',
      `masks are updated every ${frequency} steps from beginStep ${beginStep}, so endStep ${endStep} is never an update: finalSparsity would not be reached; make endStep - beginStep a multiple of frequency`,
    );
  }
  const schedule = { ...settings, endStep };
  validatePolynomialDecay(schedule);
  return schedule;
}
