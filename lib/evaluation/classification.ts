/** Counts of a classifier's answers: `confusion[actual][predicted]`. */
export type ConfusionMatrix = number[][];

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
}

export function emptyConfusion(classes: number): ConfusionMatrix {
  return Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
}

/** Adds one batch of answers to `confusion`. */
export function tallyAnswers(confusion: ConfusionMatrix, actual: ArrayLike<number>, predicted: ArrayLike<number>): void {
  for (let i = 0; i < actual.length; i++) confusion[actual[i]!]![predicted[i]!]!++;
}

/** Share of all answers on the diagonal; 0 when there are none. */
export function accuracyOf(confusion: ConfusionMatrix): number {
  let correct = 0;
  let total = 0;
  confusion.forEach((row, actual) => {
    correct += row[actual]!;
    total += row.reduce((a, b) => a + b, 0);
  });
  return total ? correct / total : 0;
}

/**
 * Precision, recall and F1 of each class. A class never predicted has precision 0, a class never present recall 0,
 * and F1 is 0 where both are 0 (scikit-learn's `zero_division=0`).
 */
export function perClassScores(confusion: ConfusionMatrix): ClassScores[] {
  return confusion.map((row, c) => {
    const truePositives = row[c]!;
    const predictedAsC = confusion.reduce((n, r) => n + r[c]!, 0);
    const actuallyC = row.reduce((a, b) => a + b, 0);
    const precision = predictedAsC ? truePositives / predictedAsC : 0;
    const recall = actuallyC ? truePositives / actuallyC : 0;
    return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 };
  });
}
