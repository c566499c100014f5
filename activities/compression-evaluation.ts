import type { CompressedModel } from '../lib/compression/compressed-model';
import type { VariantMeasurement } from '../lib/compression/choice';
import { evaluateInChild } from './evaluate-in-child';

export interface EvaluateVariantInput {
  modelName: string;
  /** The variant's name in the table (`baseline` for the uncompressed model). */
  variant: string;
  /** What a compression step returned, or the uncompressed model as `{ format: 'tfjs-layers', uri }`. */
  model: CompressedModel | { format: 'tfjs-layers'; uri: string };
  manifestUri: string;
}

/** One row of the compression table: the variant measured on the test split in the runtime that serves it. */
export interface VariantEvaluation extends VariantMeasurement {
  /** Test images scored. */
  count: number;
}

/**
 * Evaluates one compression variant (or the baseline) on the test split by the same code as every other: in a child
 * process, in the runtime its format is served by, heartbeating progress; cancellation kills the child.
 */
export async function evaluateVariant(input: EvaluateVariantInput): Promise<VariantEvaluation> {
  const summary = await evaluateInChild({ modelUri: input.model.uri, format: input.model.format, manifestUri: input.manifestUri, split: 'test' });
  if (!summary.latencyMs) throw new Error(`the evaluation of variant ${input.variant} did not time predictions`);
  return {
    variant: input.variant,
    format: input.model.format,
    runtime: summary.runtime,
    accuracy: summary.accuracy,
    loss: summary.loss,
    count: summary.count,
    parameters: summary.parameterCount,
    nonZeroParameters: summary.nonZeroParameters,
    bytes: summary.modelBytes,
    gzipBytes: summary.gzipBytes,
    latencyMs: summary.latencyMs,
    reportUri: summary.reportUri,
  };
}
