import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { distillationLoss, labelAccuracy, logitsOf } from '../lib/compression/distillation';
import { tensorflow } from '../lib/tf';

const { tf } = tensorflow();
const { log, exp, LN2 } = Math;

/**
 * Two samples, three classes. The student's softmax outputs:
 *   sample 0: [1/2, 1/4, 1/4], label 0      sample 1: [1/4, 1/2, 1/4], label 2
 * so its logits (log-probabilities) are [-ln 2, -2 ln 2, -2 ln 2] and [-2 ln 2, -ln 2, -2 ln 2].
 * The teacher's logits: [2 ln 2, 0, 0] for both samples.
 */
const studentProbabilities = [
  [0.5, 0.25, 0.25],
  [0.25, 0.5, 0.25],
];
const labels = [
  [1, 0, 0],
  [0, 0, 1],
];
const teacherLogits = [
  [2 * LN2, 0, 0],
  [2 * LN2, 0, 0],
];

/** Cross-entropy with the labels: -ln(1/2) = ln 2 for sample 0, -ln(1/4) = 2 ln 2 for sample 1. */
const crossEntropy = [LN2, 2 * LN2];

/**
 * T = 1. Teacher: softmax([2 ln 2, 0, 0]) = [4, 1, 1] / 6 = [2/3, 1/6, 1/6]. Student: softmax of its log-probabilities
 * is its probabilities. KL(p || q) = sum p ln(p / q):
 *   sample 0: 2/3 ln((2/3) / (1/2)) + 2 * 1/6 ln((1/6) / (1/4)) = 2/3 ln(4/3) + 1/3 ln(2/3)
 *   sample 1: 2/3 ln((2/3) / (1/4)) + 1/6 ln((1/6) / (1/2)) + 1/6 ln((1/6) / (1/4)) = 2/3 ln(8/3) + 1/6 ln(1/3) + 1/6 ln(2/3)
 */
const divergenceAtT1 = [(2 / 3) * log(4 / 3) + (1 / 3) * log(2 / 3), (2 / 3) * log(8 / 3) + (1 / 6) * log(1 / 3) + (1 / 6) * log(2 / 3)];

/**
 * T = 2. Teacher: softmax([ln 2, 0, 0]) = [2, 1, 1] / 4 = [1/2, 1/4, 1/4].
 * Student, sample 0: softmax([-ln 2, -2 ln 2, -2 ln 2] / 2) ∝ [2^-1/2, 2^-1, 2^-1], sum s = 2^-1/2 + 1, so
 * q = [2^-1/2 / s, 1 / (2 s), 1 / (2 s)]; sample 1 the same with the first two classes swapped.
 *   sample 0: 1/2 ln((1/2) / q0) + 2 * 1/4 ln((1/4) / q1)
 *   sample 1: 1/2 ln((1/2) / q1) + 1/4 ln((1/4) / q0) + 1/4 ln((1/4) / q1)
 */
const s = exp(-LN2 / 2) + 1;
const [q0, q1] = [exp(-LN2 / 2) / s, 0.5 / s];
const divergenceAtT2 = [0.5 * log(0.5 / q0) + 0.5 * log(0.25 / q1), 0.5 * log(0.5 / q1) + 0.25 * log(0.25 / q0) + 0.25 * log(0.25 / q1)];

function lossOf(settings: { temperature: number; alpha: number }, targets: number[][]): number[] {
  return tf.tidy(() => Array.from(distillationLoss(tf, { ...settings, classes: 3 })(tf.tensor2d(targets), tf.tensor2d(studentProbabilities)).dataSync()));
}

const packed = labels.map((row, i) => [...row, ...teacherLogits[i]!]);

function assertClose(actual: number[], expected: number[]): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((value, i) => assert.ok(Math.abs(value - expected[i]!) < 1e-5, `sample ${i}: ${value}, expected ${expected[i]}`));
}

describe('distillation loss (Hinton et al. 2015)', () => {
  it('is the cross-entropy with the labels alone at alpha 0', () => {
    assertClose(lossOf({ temperature: 4, alpha: 0 }, packed), crossEntropy);
  });

  it('is the divergence from the teacher alone at alpha 1 and T 1', () => {
    assertClose(lossOf({ temperature: 1, alpha: 1 }, packed), divergenceAtT1);
  });

  it('weighs T^2 times the divergence at temperature T against the cross-entropy', () => {
    // alpha 0.25, T 2: 0.25 * 4 * KL + 0.75 * CE.
    const expected = divergenceAtT2.map((kl, i) => 0.25 * 4 * kl + 0.75 * crossEntropy[i]!);
    assertClose(lossOf({ temperature: 2, alpha: 0.25 }, packed), expected);
  });

  it('scores plain one-hot labels (the validation split) with the cross-entropy alone, whatever alpha', () => {
    assertClose(lossOf({ temperature: 2, alpha: 1 }, labels), crossEntropy);
  });

  it('refuses targets of any other width', () => {
    assert.throws(() => lossOf({ temperature: 2, alpha: 0.5 }, [[1, 0, 0, 0]]), /3 or 6 wide, not 4/);
  });

  it('takes log-probabilities as logits: softened, they give what the pre-softmax logits give', () => {
    const logits = tf.tensor2d([[3, -1, 0.5]]);
    const softened = (z: ReturnType<typeof tf.tensor2d>) => Array.from(tf.softmax(tf.div(z, 3)).dataSync());
    assertClose(softened(logitsOf(tf, tf.softmax(logits)) as typeof logits), softened(logits));
  });

  it('counts accuracy on the labels, not on the teacher logits beside them', () => {
    // Sample 0 predicts class 0 (label 0: right); sample 1 predicts class 1 (label 2: wrong); the teacher says class 0.
    const accuracy = tf.tidy(() => Array.from(labelAccuracy(tf, 3)(tf.tensor2d(packed), tf.tensor2d(studentProbabilities)).dataSync()));
    assert.deepEqual(accuracy, [1, 0]);
  });
});
