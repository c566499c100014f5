import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hyperparameterSweepInputSchema } from '../lib/schemas/hyperparameter-sweep';
import { applyAssignment, gridAssignment, gridSize, plannedTrials, randomAssignment, rankTrial, trialScore, type TrialOutcome } from '../lib/sweep';
import type { EpochRecord } from '../lib/training/checkpoint';

/** 6 keys x 100 values: 10^12 combinations. */
const hugeSpace = Object.fromEntries(
  ['training.learningRate', 'model.dropout', 'training.batchSize', 'training.seed', 'training.epochs', 'model.convsPerBlock'].map((key, k) => [
    key,
    Array.from({ length: 100 }, (_, v) => k * 1000 + v),
  ]),
);

describe('search spaces', () => {
  it('grid search decodes each index to one combination, last key fastest', () => {
    const space = { 'training.learningRate': [0.1, 0.01], 'model.dropout': [0, 0.5] };
    assert.equal(gridSize(space), 4);
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => gridAssignment(space, i)),
      [
        { 'training.learningRate': 0.1, 'model.dropout': 0 },
        { 'training.learningRate': 0.1, 'model.dropout': 0.5 },
        { 'training.learningRate': 0.01, 'model.dropout': 0 },
        { 'training.learningRate': 0.01, 'model.dropout': 0.5 },
      ],
    );
  });

  it('grid search over 10^12 combinations decodes any index without listing the grid', () => {
    assert.equal(gridSize(hugeSpace), 1e12);
    const keys = Object.keys(hugeSpace);
    assert.deepEqual(Object.values(gridAssignment(hugeSpace, 1e12 - 1)), [99, 1099, 2099, 3099, 4099, 5099]);
    assert.deepEqual(Object.keys(gridAssignment(hugeSpace, 1e12 - 1)), keys);
    // 123456789012 in base 100, most significant key first.
    assert.deepEqual(Object.values(gridAssignment(hugeSpace, 123_456_789_012)), [12, 1034, 2056, 3078, 4090, 5012]);
    assert.equal(plannedTrials('grid', hugeSpace, undefined), 1e12);
    assert.equal(plannedTrials('grid', hugeSpace, 3), 3);
    assert.equal(plannedTrials('grid', { 'model.dropout': [0, 0.5] }, 10), 2, 'a grid runs at most its combinations');
    assert.equal(plannedTrials('random', hugeSpace, undefined), 10);
  });

  it("random search: trial i's assignment depends only on the seed and i, and stays inside the space", () => {
    const space = { 'training.batchSize': [16, 32, 64], 'model.hiddenUnits': [[64], [128, 64]] };
    const draws = Array.from({ length: 300 }, (_, i) => randomAssignment(space, 7, i));
    // Computed alone, in reverse order: the same assignments.
    assert.deepEqual(Array.from({ length: 300 }, (_, i) => randomAssignment(space, 7, 299 - i)).reverse(), draws);
    assert.notDeepEqual(Array.from({ length: 300 }, (_, i) => randomAssignment(space, 8, i)), draws);
    for (const value of space['training.batchSize']) {
      const count = draws.filter((d) => d['training.batchSize'] === value).length;
      assert.ok(count > 60 && count < 140, `batch size ${value} drawn ${count} times of 300`);
    }
    for (const assignment of draws) {
      assert.ok(space['model.hiddenUnits'].some((v) => JSON.stringify(v) === JSON.stringify(assignment['model.hiddenUnits'])));
    }
    // Seeds beyond 32 bits still give distinct sequences.
    assert.notDeepEqual(randomAssignment(hugeSpace, 2 ** 40, 0), randomAssignment(hugeSpace, 0, 0));
  });

  it('applies dotted paths to a copy, creating objects on the way', () => {
    const base = { model: { dropout: 0.2 }, training: {} as Record<string, unknown> };
    const trial = applyAssignment(base, { 'model.dropout': 0.5, 'training.earlyStopping.patience': 2 });
    assert.deepEqual(trial, { model: { dropout: 0.5 }, training: { earlyStopping: { patience: 2 } } });
    assert.deepEqual(base, { model: { dropout: 0.2 }, training: {} });
  });
});

describe('ranking trials', () => {
  const epoch = (n: number, validationAccuracy: number, validationLoss: number): EpochRecord => ({
    epoch: n,
    learningRate: 0.001,
    loss: validationLoss,
    accuracy: validationAccuracy,
    validationLoss,
    validationAccuracy,
    seconds: 1,
  });
  // Trial 1 peaked at epoch 3 and then overfit; early stopping returned epoch 3's weights. Trial 2 ended on its best.
  const overfitting = { history: [epoch(1, 0.8, 0.6), epoch(2, 0.9, 0.35), epoch(3, 0.95, 0.2), epoch(4, 0.85, 0.5), epoch(5, 0.82, 0.55)], bestEpoch: epoch(3, 0.95, 0.2) };
  const steady = { history: [epoch(1, 0.8, 0.6), epoch(2, 0.88, 0.4), epoch(3, 0.9, 0.3)], bestEpoch: epoch(3, 0.9, 0.3) };
  const outcome = (trial: number, result: typeof steady, metric: 'validationAccuracy' | 'validationLoss'): TrialOutcome => ({
    trial,
    workflowId: `sweep-trial-${trial}`,
    assignment: {},
    status: 'completed',
    score: trialScore(metric, result.bestEpoch),
    bestEpoch: result.bestEpoch.epoch,
  });

  it('scores a trial by the epoch whose weights it returned, not its last epoch', () => {
    for (const metric of ['validationAccuracy', 'validationLoss'] as const) {
      let ranked: TrialOutcome[] = [];
      ranked = rankTrial(ranked, outcome(1, overfitting, metric), metric, 10);
      ranked = rankTrial(ranked, outcome(2, steady, metric), metric, 10);
      assert.deepEqual(
        ranked.map((t) => t.trial),
        [1, 2],
        `${metric}: the overfitting trial's returned model is the better one, although its last epoch is worse`,
      );
    }
    assert.equal(trialScore('validationAccuracy', overfitting.bestEpoch), 0.95);
    assert.equal(trialScore('validationLoss', overfitting.bestEpoch), 0.2);
  });

  it('keeps the best trials best first, ties to the earlier trial, failed trials out, at most the limit', () => {
    const scored = (trial: number, score: number): TrialOutcome => ({ trial, workflowId: `t${trial}`, assignment: {}, status: 'completed', score });
    const failed: TrialOutcome = { trial: 9, workflowId: 't9', assignment: {}, status: 'failed', error: 'diverged' };
    let ranked: TrialOutcome[] = [];
    for (const trial of [scored(1, 0.5), scored(2, 0.9), failed, scored(3, 0.9), scored(4, 0.7), scored(5, NaN)]) ranked = rankTrial(ranked, trial, 'validationAccuracy', 3);
    assert.deepEqual(
      ranked.map((t) => t.trial),
      [2, 3, 4],
    );
    ranked = [];
    for (const trial of [scored(1, 0.5), scored(2, 0.9), scored(3, 0.2)]) ranked = rankTrial(ranked, trial, 'validationLoss', 2);
    assert.deepEqual(
      ranked.map((t) => t.trial),
      [3, 1],
    );
  });
});

describe('hyperparameterSweep input', () => {
  const input = { manifestUri: 'artifact://data/manifest.json', space: { 'model.dropout': [0, 0.5] } };

  it('refuses test-set metrics, saying why', () => {
    for (const metric of ['testAccuracy', 'testLoss']) {
      const result = hyperparameterSweepInputSchema.safeParse({ ...input, metric });
      assert.equal(result.success, false);
      assert.match(result.error!.issues[0]!.message, new RegExp(`${metric} is measured on the test set.*use validationAccuracy or validationLoss`));
    }
    assert.equal(hyperparameterSweepInputSchema.parse({ ...input, metric: 'validationLoss' }).metric, 'validationLoss');
  });

  it('takes any trial count (the worker sets the ceiling) and at most 200 trials per run', () => {
    assert.equal(hyperparameterSweepInputSchema.parse({ ...input, trials: 50_000 }).trials, 50_000);
    assert.equal(hyperparameterSweepInputSchema.parse(input).trialsPerRun, 200);
    assert.equal(hyperparameterSweepInputSchema.safeParse({ ...input, trialsPerRun: 201 }).success, false);
  });
});
