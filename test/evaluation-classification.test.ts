import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accuracyOf, emptyConfusion, perClassScores, tallyAnswers } from '../lib/evaluation/classification';

describe('classification metrics', () => {
  // Ten answers over four classes: class 2 is present but never predicted, class 3 is predicted but never present.
  const actual = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2];
  const predicted = [0, 0, 0, 1, 3, 0, 1, 1, 1, 3];
  const expected = [
    [3, 1, 0, 1],
    [1, 2, 0, 0],
    [0, 1, 0, 1],
    [0, 0, 0, 0],
  ];

  it('tallies answers into confusion[actual][predicted], batch by batch', () => {
    const confusion = emptyConfusion(4);
    tallyAnswers(confusion, actual.slice(0, 4), predicted.slice(0, 4));
    tallyAnswers(confusion, Int32Array.from(actual.slice(4)), Int32Array.from(predicted.slice(4)));
    assert.deepEqual(confusion, expected);
  });

  it('accuracy is the diagonal over all answers, and 0 with no answers', () => {
    assert.equal(accuracyOf(expected), 5 / 10);
    assert.equal(accuracyOf(emptyConfusion(3)), 0);
  });

  it('precision, recall and F1 per class match the hand-computed values, with 0 for a class never predicted or never present', () => {
    const scores = perClassScores(expected);
    const want = [
      // Class 0: 3 of the 4 predicted as 0 are 0; 3 of the 5 zeros found. F1 = 2 * 0.75 * 0.6 / 1.35.
      { precision: 3 / 4, recall: 3 / 5, f1: 2 / 3 },
      // Class 1: 2 of the 4 predicted as 1; 2 of the 3 ones. F1 = 2 * (1/2) * (2/3) / (7/6).
      { precision: 2 / 4, recall: 2 / 3, f1: 4 / 7 },
      // Class 2: never predicted (precision 0 by convention), neither of its 2 images found.
      { precision: 0, recall: 0, f1: 0 },
      // Class 3: predicted twice, both wrong; never present (recall 0 by convention).
      { precision: 0, recall: 0, f1: 0 },
    ];
    assert.equal(scores.length, 4);
    scores.forEach((score, c) => {
      for (const key of ['precision', 'recall', 'f1'] as const) {
        assert.ok(Math.abs(score[key] - want[c]![key]) < 1e-12, `class ${c} ${key}: ${score[key]}, want ${want[c]![key]}`);
      }
    });
  });

  it('a perfect classifier scores 1 everywhere', () => {
    assert.deepEqual(perClassScores([[2, 0], [0, 3]]), [
      { precision: 1, recall: 1, f1: 1 },
      { precision: 1, recall: 1, f1: 1 },
    ]);
  });
});
