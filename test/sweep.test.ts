import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyAssignment, gridAssignments, randomAssignments } from '../lib/sweep';

describe('search spaces', () => {
  it('grid search takes every combination, last key fastest', () => {
    assert.deepEqual(gridAssignments({ 'training.learningRate': [0.1, 0.01], 'model.dropout': [0, 0.5] }), [
      { 'training.learningRate': 0.1, 'model.dropout': 0 },
      { 'training.learningRate': 0.1, 'model.dropout': 0.5 },
      { 'training.learningRate': 0.01, 'model.dropout': 0 },
      { 'training.learningRate': 0.01, 'model.dropout': 0.5 },
    ]);
  });

  it('random search is reproducible from its seed and stays inside the space', () => {
    const space = { 'training.batchSize': [16, 32, 64], 'model.hiddenUnits': [[64], [128, 64]] };
    const a = randomAssignments(space, 20, 7);
    assert.deepEqual(a, randomAssignments(space, 20, 7));
    assert.notDeepEqual(a, randomAssignments(space, 20, 8));
    for (const assignment of a) {
      assert.ok(space['training.batchSize'].includes(assignment['training.batchSize'] as number));
      assert.ok(space['model.hiddenUnits'].some((v) => JSON.stringify(v) === JSON.stringify(assignment['model.hiddenUnits'])));
    }
  });

  it('applies dotted paths to a copy, creating objects on the way', () => {
    const base = { model: { dropout: 0.2 }, training: {} as Record<string, unknown> };
    const trial = applyAssignment(base, { 'model.dropout': 0.5, 'training.earlyStopping.patience': 2 });
    assert.deepEqual(trial, { model: { dropout: 0.5 }, training: { earlyStopping: { patience: 2 } } });
    assert.deepEqual(base, { model: { dropout: 0.2 }, training: {} });
  });
});
