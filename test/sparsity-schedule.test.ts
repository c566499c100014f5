import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keptWeights, PruningScheduleError, scheduleForRun, sparsityAt, updatesMasksAt, validatePolynomialDecay, type PolynomialDecay } from '../lib/compression/sparsity-schedule';

const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} vs ${expected}`);

describe('PolynomialDecay sparsity schedule', () => {
  const schedule: PolynomialDecay = { initialSparsity: 0.2, finalSparsity: 0.8, beginStep: 10, endStep: 30, frequency: 5, power: 3 };

  it('follows final + (initial - final) * (1 - progress)^power, clamped before beginStep and after endStep', () => {
    close(sparsityAt(schedule, 0), 0.2);
    close(sparsityAt(schedule, 10), 0.2);
    // progress 0.25: 0.8 - 0.6 * 0.75^3
    close(sparsityAt(schedule, 15), 0.546875);
    // progress 0.35: 0.8 - 0.6 * 0.65^3
    close(sparsityAt(schedule, 17), 0.635225);
    close(sparsityAt(schedule, 20), 0.725);
    close(sparsityAt(schedule, 30), 0.8);
    close(sparsityAt(schedule, 1000), 0.8);
    close(sparsityAt({ ...schedule, power: 1 }, 20), 0.5);
  });

  it('updates masks every `frequency` steps from beginStep through endStep, both included', () => {
    const steps = Array.from({ length: 40 }, (_, step) => step).filter((step) => updatesMasksAt(schedule, step));
    assert.deepEqual(steps, [10, 15, 20, 25, 30]);
    assert.equal(updatesMasksAt(schedule, 35), false, 'on the frequency grid but after endStep');
    const offGrid = { ...schedule, beginStep: 0, endStep: 12 };
    assert.deepEqual([0, 5, 10, 12, 15].map((step) => updatesMasksAt(offGrid, step)), [true, true, true, false, false]);
    const everyStep = { ...schedule, frequency: 1, beginStep: 3, endStep: 5 };
    assert.deepEqual([2, 3, 4, 5, 6].map((step) => updatesMasksAt(everyStep, step)), [false, true, true, true, false]);
  });

  it('keeps round-half-to-even of size * (1 - sparsity) weights, at least one', () => {
    assert.equal(keptWeights(10, 0.75), 2, '2.5 rounds to 2');
    assert.equal(keptWeights(14, 0.75), 4, '3.5 rounds to 4');
    assert.equal(keptWeights(6, 0.75), 2, '1.5 rounds to 2');
    assert.equal(keptWeights(1000, 0.8), 200);
    assert.equal(keptWeights(10, 0.99), 1, 'never none');
    assert.equal(keptWeights(2, 0.75), 1, '0.5 rounds to 0, then at least one');
    assert.equal(keptWeights(7, 0), 7);
  });

  it('refuses what TensorFlow Model Optimization refuses, and endStep equal to beginStep', () => {
    assert.doesNotThrow(() => validatePolynomialDecay(schedule));
    assert.throws(() => validatePolynomialDecay({ ...schedule, beginStep: -1 }), /beginStep/);
    assert.throws(() => validatePolynomialDecay({ ...schedule, endStep: 10 }), /endStep must be an integer after beginStep/);
    assert.throws(() => validatePolynomialDecay({ ...schedule, frequency: 0 }), /frequency/);
    assert.throws(() => validatePolynomialDecay({ ...schedule, finalSparsity: 1 }), /finalSparsity must be in \[0, 1\)/);
    assert.throws(() => validatePolynomialDecay({ ...schedule, initialSparsity: -0.1 }), /initialSparsity/);
  });
});

describe('the schedule of a fine-tuning run', () => {
  const settings = { initialSparsity: 0, finalSparsity: 0.8, beginStep: 0, endStep: null, frequency: 10, power: 3 };
  const field = (name: string) => (err: unknown) => err instanceof PruningScheduleError && err.field === name;

  it('ends by default at the last mask update at or before 70% of the run, at least one interval after beginStep', () => {
    assert.equal(scheduleForRun(settings, 100).endStep, 70);
    assert.equal(scheduleForRun({ ...settings, frequency: 30 }, 100).endStep, 60);
    assert.equal(scheduleForRun({ ...settings, beginStep: 65 }, 100).endStep, 75);
    assert.equal(scheduleForRun({ ...settings, endStep: 40 }, 100).endStep, 40);
  });

  it('refuses a schedule whose masks never reach finalSparsity within the run, naming the setting', () => {
    assert.throws(() => scheduleForRun({ ...settings, frequency: 50 }, 20), field('frequency'));
    assert.throws(() => scheduleForRun({ ...settings, endStep: 25 }, 100), field('endStep'));
    assert.throws(() => scheduleForRun({ ...settings, endStep: 100 }, 100), field('endStep'));
    assert.throws(() => scheduleForRun({ ...settings, beginStep: 100 }, 100), field('beginStep'));
  });
});
