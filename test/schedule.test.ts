import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { learningRateScheduleSchema } from '../lib/schemas/model';
import { learningRateAt } from '../lib/training/schedule';

describe('learning-rate schedules', () => {
  it('constant keeps the rate', () => {
    assert.equal(learningRateAt(learningRateScheduleSchema.parse({ type: 'constant' }), 0.01, 7, 10), 0.01);
  });

  it('step multiplies by the factor every N epochs', () => {
    const schedule = learningRateScheduleSchema.parse({ type: 'step', everyEpochs: 2, factor: 0.5 });
    assert.deepEqual([0, 1, 2, 3, 4].map((e) => learningRateAt(schedule, 0.1, e, 5)), [0.1, 0.1, 0.05, 0.05, 0.025]);
  });

  it('exponential decays each epoch', () => {
    const schedule = learningRateScheduleSchema.parse({ type: 'exponential', decay: 0.9 });
    assert.ok(Math.abs(learningRateAt(schedule, 1, 3, 10) - 0.729) < 1e-12);
  });

  it('cosine goes from the initial rate to the minimum over all epochs', () => {
    const schedule = learningRateScheduleSchema.parse({ type: 'cosine', minLearningRate: 0.001 });
    assert.equal(learningRateAt(schedule, 0.1, 0, 11), 0.1);
    assert.ok(Math.abs(learningRateAt(schedule, 0.1, 5, 11) - 0.0505) < 1e-12);
    assert.ok(Math.abs(learningRateAt(schedule, 0.1, 10, 11) - 0.001) < 1e-12);
  });
});
