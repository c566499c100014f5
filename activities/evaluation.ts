import type { EvaluationSummary } from '../lib/evaluation/evaluate-job';
import { modelTestAccuracy } from '../lib/metrics';
import type { Split } from '../lib/split';
import { evaluateInChild } from './evaluate-in-child';

export type { EvaluationReport, EvaluationSummary } from '../lib/evaluation/evaluate-job';

export interface EvaluateModelInput {
  modelName: string;
  modelUri: string;
  manifestUri: string;
  split?: Split;
  /** Time predictions (default true); see EvaluateJobInput. */
  measureLatency?: boolean;
}

/**
 * Scores a stored TensorFlow.js model on one split of a dataset in the worker's warm evaluation process, heartbeating
 * its progress; cancellation kills it. Returns a small summary; the full report is an artifact.
 */
export async function evaluateModel(input: EvaluateModelInput): Promise<EvaluationSummary> {
  const split = input.split ?? 'test';
  const summary = await evaluateInChild({ modelUri: input.modelUri, manifestUri: input.manifestUri, split, measureLatency: input.measureLatency });
  if (split === 'test') modelTestAccuracy.set({ model: input.modelName }, summary.accuracy);
  return summary;
}
