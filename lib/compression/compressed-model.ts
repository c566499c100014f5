/** The runtime format a compressed model is stored in. */
export type ModelFormat = 'tfjs-layers' | 'onnx';

/** What every compression step returns: a stored model and small facts about how it was made. */
export interface CompressedModel {
  format: ModelFormat;
  /** A directory artifact (`model.json` + weights) for tfjs-layers, a `.onnx` blob for onnx. */
  uri: string;
  bytes: number;
  /** Other stored forms of the same model, e.g. a sparse encoding beside a stock-loadable dense copy. */
  alternates?: { label: string; uri: string; bytes: number; gzipBytes?: number }[];
  /** Small, method-specific facts for the table: per-layer sparsity, calibration ranges summary, teacher logits URI, ... */
  details: Record<string, unknown>;
}
