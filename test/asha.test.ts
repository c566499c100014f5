import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasPromotion, initialAshaState, recordResult, rungBudgets, takePromotion, type AshaSettings, type AshaState } from '../lib/asha';
import { hyperparameterSweepInputSchema } from '../lib/schemas/hyperparameter-sweep';
import { rankTrial, type TrialOutcome } from '../lib/sweep';

const checkpoint = (trial: number, rung: number) => `artifact://ckpt/${trial}-${rung}`;

/** Records trial `trial`'s score at `rung`, able to continue unless told otherwise. */
function report(state: AshaState, settings: AshaSettings, total: number, rung: number, trial: number, score: number, canContinue = true): void {
  recordResult(state, settings.reductionFactor, total, 'max', rung, { trial, score, ...(canContinue && { checkpointUri: checkpoint(trial, rung) }) });
}

/** Every promotion available now, in the order a free slot takes them. */
function drain(state: AshaState, eta: number): [number, number][] {
  const taken: [number, number][] = [];
  for (let p = takePromotion(state, eta); p; p = takePromotion(state, eta)) {
    assert.equal(p.checkpointUri, checkpoint(p.trial, p.rung - 1), 'a promotion continues from the checkpoint of the rung it leaves');
    taken.push([p.trial, p.rung]);
  }
  return taken;
}

describe('ASHA rungs', () => {
  it('puts rungs at gracePeriod * eta^k epochs below maxEpochs, and the last at maxEpochs', () => {
    assert.deepEqual(rungBudgets({ maxEpochs: 9, gracePeriod: 1, reductionFactor: 3 }), [1, 3, 9]);
    assert.deepEqual(rungBudgets({ maxEpochs: 10, gracePeriod: 1, reductionFactor: 3 }), [1, 3, 9, 10]);
    assert.deepEqual(rungBudgets({ maxEpochs: 3, gracePeriod: 1, reductionFactor: 2 }), [1, 2, 3]);
    assert.deepEqual(rungBudgets({ maxEpochs: 27, gracePeriod: 2, reductionFactor: 4 }), [2, 8, 27]);
    assert.deepEqual(rungBudgets({ maxEpochs: 4, gracePeriod: 4, reductionFactor: 2 }), [4], 'a grace period of maxEpochs leaves one rung: every trial runs to the end');
  });
});

describe('ASHA promotions', () => {
  const settings: AshaSettings = { maxEpochs: 4, gracePeriod: 1, reductionFactor: 2 };

  it('promotes a trial as soon as it is in the top 1/eta of what has reported at its rung (worked example, eta 2)', () => {
    const state = initialAshaState(settings);
    // Rung 0 (1 epoch): scores arrive one by one; after each, the promotions a free slot would take.
    report(state, settings, 6, 0, 1, 0.5);
    assert.deepEqual(drain(state, 2), [], '1 reported: floor(1/2) = 0 places');
    report(state, settings, 6, 0, 2, 0.9);
    assert.deepEqual(drain(state, 2), [[2, 1]], '2 reported: the top 1 (trial 2) goes to rung 1 without waiting for the rest');
    report(state, settings, 6, 0, 3, 0.1);
    assert.deepEqual(drain(state, 2), [], '3 reported: still 1 place, taken');
    report(state, settings, 6, 0, 4, 0.2);
    assert.deepEqual(drain(state, 2), [[1, 1]], '4 reported: 2 places; trial 1, passed over at first, is now in the top half');
    // Rung 1 (2 epochs): trial 2 reports first, then trial 1 does better.
    report(state, settings, 6, 1, 2, 0.92);
    assert.deepEqual(drain(state, 2), []);
    report(state, settings, 6, 1, 1, 0.95);
    assert.deepEqual(drain(state, 2), [[1, 2]], 'rung 1 promotes its best to the last rung');
    report(state, settings, 6, 0, 5, 0.7);
    report(state, settings, 6, 0, 6, 0.3);
    assert.deepEqual(drain(state, 2), [[5, 1]], '6 reported at rung 0: 3 places, trials 2, 5 and 1');
    assert.equal(hasPromotion(state, 2), false);
    assert.deepEqual(
      state.rungs.map((r) => r.reported),
      [6, 2, 0],
    );
  });

  it('takes promotions from the highest rung first', () => {
    const state = initialAshaState(settings);
    report(state, settings, 8, 0, 1, 0.9);
    report(state, settings, 8, 0, 2, 0.1);
    report(state, settings, 8, 1, 1, 0.9);
    report(state, settings, 8, 1, 3, 0.2);
    report(state, settings, 8, 0, 3, 0.8);
    report(state, settings, 8, 0, 4, 0.1);
    assert.deepEqual(drain(state, 2), [
      [1, 2],
      [1, 1],
      [3, 1],
    ]);
  });

  it('eta sets the share kept: with eta 3 a rung promotes one of every three', () => {
    const eta3: AshaSettings = { maxEpochs: 9, gracePeriod: 1, reductionFactor: 3 };
    const state = initialAshaState(eta3);
    const scores = [0.3, 0.6, 0.2, 0.5, 0.9, 0.1];
    const promoted: [number, number][] = [];
    scores.forEach((score, i) => {
      report(state, eta3, 9, 0, i + 1, score);
      promoted.push(...drain(state, 3));
    });
    assert.deepEqual(promoted, [
      [2, 1],
      [5, 1],
    ]);
  });

  it('ties go to the earlier trial', () => {
    const state = initialAshaState(settings);
    report(state, settings, 4, 0, 2, 0.5);
    report(state, settings, 4, 0, 1, 0.5);
    assert.deepEqual(drain(state, 2), [[1, 1]]);
  });

  it('a failed trial neither takes a place nor widens the top; one that cannot continue takes its place but is not promoted', () => {
    const state = initialAshaState(settings);
    report(state, settings, 6, 0, 1, 0.4);
    report(state, settings, 6, 0, 2, NaN);
    assert.deepEqual(drain(state, 2), [], 'a trial without a score does not count: 1 reported, no place yet');
    report(state, settings, 6, 0, 3, 0.9, false);
    assert.deepEqual(drain(state, 2), [], 'trial 3 (ended by its own early stopping) holds the one place');
    report(state, settings, 6, 0, 4, 0.1);
    assert.deepEqual(drain(state, 2), []);
    report(state, settings, 6, 0, 5, 0.05);
    assert.deepEqual(drain(state, 2), [[1, 1]], '4 reported: 2 places, trials 3 and 1');
  });

  it("keeps in a rung only the trials that could still be promoted, however many trials report", () => {
    const state = initialAshaState(settings);
    for (let trial = 1; trial <= 40; trial++) report(state, settings, 40, 0, trial, trial / 100);
    assert.equal(state.rungs[0]!.reported, 40);
    assert.equal(state.rungs[0]!.leaders.length, 20, 'of 40 trials at most 20 ever leave rung 0');
    assert.deepEqual(state.rungs[0]!.leaders[0], { trial: 40, score: 0.4, checkpointUri: checkpoint(40, 0) });
    // What was cut could never have been promoted: the promotions are the same as with nothing cut.
    assert.deepEqual(
      drain(state, 2).map(([trial]) => trial),
      Array.from({ length: 20 }, (_, i) => 40 - i),
    );
  });

  it('a trial that reaches the last rung is counted there and goes no further', () => {
    const state = initialAshaState(settings);
    report(state, settings, 4, 2, 1, 0.99);
    assert.deepEqual(state.rungs[2], { reported: 1, leaders: [] });
    assert.equal(hasPromotion(state, 2), false);
  });

  it("ranks lower-is-better metrics the other way", () => {
    const state = initialAshaState(settings);
    recordResult(state, 2, 4, 'min', 0, { trial: 1, score: 0.2, checkpointUri: 'a' });
    recordResult(state, 2, 4, 'min', 0, { trial: 2, score: 0.1, checkpointUri: 'b' });
    assert.deepEqual(takePromotion(state, 2), { trial: 2, rung: 1, checkpointUri: 'b' });
  });

  it('the sweep ranks a trial by its latest rung, in place of its earlier outcome', () => {
    const row = (trial: number, score: number, rung: number): TrialOutcome => ({ trial, workflowId: `t${trial}-${rung}`, assignment: {}, status: 'completed', score, rung });
    let top: TrialOutcome[] = [];
    for (const r of [row(1, 0.5, 0), row(2, 0.6, 0), row(1, 0.8, 1)]) top = rankTrial(top, r, 'validationAccuracy', 10);
    assert.deepEqual(
      top.map((t) => [t.trial, t.rung]),
      [
        [1, 1],
        [2, 0],
      ],
    );
  });
});

describe('hyperparameterSweep input for ASHA', () => {
  const input = { manifestUri: 'artifact://data/manifest.json', space: { 'model.dropout': [0, 0.5] } };

  it('defaults to eta 3, grace period 1, 9 epochs, grid points; settings need search "asha"', () => {
    assert.deepEqual(hyperparameterSweepInputSchema.parse({ ...input, search: 'asha', asha: {} }).asha, { maxEpochs: 9, gracePeriod: 1, reductionFactor: 3, sampling: 'grid' });
    const misplaced = hyperparameterSweepInputSchema.safeParse({ ...input, asha: { maxEpochs: 3 } });
    assert.deepEqual(misplaced.error?.issues.map((i) => [i.path.join('.'), i.message]), [['asha', 'applies to search "asha" only']]);
  });

  it('refuses a grace period over maxEpochs, eta below 2 and training.epochs set by hand, naming the field', () => {
    const issues = (extra: object) => hyperparameterSweepInputSchema.safeParse({ ...input, search: 'asha', ...extra }).error?.issues.map((i) => i.path.join('.'));
    assert.deepEqual(issues({ asha: { maxEpochs: 3, gracePeriod: 4 } }), ['asha.gracePeriod']);
    assert.deepEqual(issues({ asha: { reductionFactor: 1 } }), ['asha.reductionFactor']);
    assert.deepEqual(issues({ space: { 'training.epochs': [1, 2] } }), ['space.training.epochs']);
    assert.deepEqual(issues({ base: { training: { epochs: 5 } } }), ['base.training.epochs']);
  });
});
