import type { CompressionBudget, CompressionObjective } from '../schemas/compress-model';
import type { InferenceLatency } from '../evaluation/latency';
import type { CompressedModel, ModelFormat } from './compressed-model';

/** What evaluation measured of one model on the test split (the fields of `evaluateVariant`'s row the table uses). */
export interface VariantMeasurement {
  variant: string;
  format: ModelFormat;
  /** `tfjs-node` (`tfjs-cpu` without native TensorFlow) or `onnxruntime-node`. */
  runtime: string;
  accuracy: number;
  loss: number;
  parameters: number;
  nonZeroParameters: number;
  /** Bytes of the stored model files, as they are and gzipped together. */
  bytes: number;
  gzipBytes: number;
  /** Median milliseconds of a prediction on one image and on a batch of `batchSize` (256 unless the split is smaller). */
  latencyMs: InferenceLatency;
  /** The full evaluation report (confusion matrix, per-class scores), as `evaluateModel` stores it. */
  reportUri: string;
}

/** How one variant ended: a stored, measured model, or the reason it has none. */
export type VariantOutcome =
  | { variant: string; method: string; status: 'done'; model: CompressedModel; measurement: VariantMeasurement }
  | { variant: string; method: string; status: 'failed'; error: string };

export interface MeasuredRow extends VariantMeasurement {
  method: string;
  status: 'done';
  modelUri: string;
  alternates: NonNullable<CompressedModel['alternates']>;
  /** The smallest stored form: the gzipped model files, or an alternate (the sparse encoding, say) if smaller. */
  sizeBytes: number;
  /** Test accuracy minus the baseline's (negative: a drop). */
  accuracyDelta: number;
  /** The baseline's figure over this row's: above 1 is smaller (non-zero parameters) or faster (batch-256). */
  sizeRatio: number;
  parameterRatio: number;
  speedup: number;
  withinBudget: boolean;
  details: Record<string, unknown>;
}

export interface FailedRow {
  variant: string;
  method: string;
  status: 'failed';
  error: string;
}

export type TableRow = MeasuredRow | FailedRow;

export interface Choice {
  variant: string;
  modelUri: string;
  format: ModelFormat;
  reason: string;
}

export interface CompressionTable {
  modelName: string;
  budget: CompressionBudget;
  baseline: MeasuredRow;
  /** The variants in input order; failed ones keep their place. */
  rows: TableRow[];
  chosen: Choice;
}

/** Accuracies are ratios of counts: a drop of exactly the budget must not miss it by a rounding error. */
const TOLERANCE = 1e-9;

function storedSize(measurement: VariantMeasurement, alternates: NonNullable<CompressedModel['alternates']>): number {
  return Math.min(measurement.gzipBytes, ...alternates.map((alternate) => alternate.gzipBytes ?? alternate.bytes));
}

/** The figure an objective minimises. */
export function objectiveValue(row: MeasuredRow, objective: CompressionObjective): number {
  switch (objective) {
    case 'size':
      return row.sizeBytes;
    case 'latency':
      return row.latencyMs.batch;
    case 'parameters':
      return row.nonZeroParameters;
  }
}

const OBJECTIVE_FIGURE: Record<CompressionObjective, (value: number) => string> = {
  size: (bytes) => `${bytes} bytes stored (gzip)`,
  latency: (ms) => `${ms.toFixed(3)} ms per batch-256 prediction`,
  parameters: (count) => `${count} non-zero parameters`,
};

function measuredRow(method: string, model: CompressedModel, measurement: VariantMeasurement, baseline: MeasuredRow | null, budget: CompressionBudget): MeasuredRow {
  const alternates = model.alternates ?? [];
  const sizeBytes = storedSize(measurement, alternates);
  const reference = baseline ?? { accuracy: measurement.accuracy, sizeBytes, nonZeroParameters: measurement.nonZeroParameters, latencyMs: measurement.latencyMs };
  const accuracyDelta = measurement.accuracy - reference.accuracy;
  return {
    ...measurement,
    method,
    status: 'done',
    modelUri: model.uri,
    alternates,
    sizeBytes,
    accuracyDelta,
    sizeRatio: reference.sizeBytes / sizeBytes,
    parameterRatio: reference.nonZeroParameters / Math.max(1, measurement.nonZeroParameters),
    speedup: reference.latencyMs.batch / measurement.latencyMs.batch,
    withinBudget: accuracyDelta >= -budget.maxAccuracyDrop - TOLERANCE,
    details: model.details,
  };
}

/** The uncompressed model's row, every ratio 1. */
export function baselineRow(model: CompressedModel, measurement: VariantMeasurement, budget: CompressionBudget): MeasuredRow {
  return measuredRow('none', model, measurement, null, budget);
}

/** Each variant's row, its figures against the baseline's. */
export function variantRows(baseline: MeasuredRow, outcomes: VariantOutcome[], budget: CompressionBudget): TableRow[] {
  return outcomes.map((outcome) =>
    outcome.status === 'failed'
      ? { variant: outcome.variant, method: outcome.method, status: 'failed', error: outcome.error }
      : measuredRow(outcome.method, outcome.model, outcome.measurement, baseline, budget),
  );
}

/**
 * The variant with the best objective among those within the accuracy budget that beat the baseline on it; ties go to
 * the more accurate, then to the earlier in the table. The baseline when no variant qualifies.
 */
export function chooseVariant(baseline: MeasuredRow, rows: TableRow[], budget: CompressionBudget): Choice {
  const { objective, maxAccuracyDrop } = budget;
  const figure = OBJECTIVE_FIGURE[objective];
  const baselineValue = objectiveValue(baseline, objective);
  const candidates = rows.filter((row): row is MeasuredRow => row.status === 'done' && row.withinBudget && objectiveValue(row, objective) < baselineValue);
  const best = candidates.reduce<MeasuredRow | undefined>((current, row) => {
    if (!current) return row;
    const [value, currentValue] = [objectiveValue(row, objective), objectiveValue(current, objective)];
    return value < currentValue || (value === currentValue && row.accuracy > current.accuracy) ? row : current;
  }, undefined);
  const budgetText = `within ${formatPoints(maxAccuracyDrop)} pp of the baseline's accuracy`;
  if (!best) {
    const measured = rows.filter((row) => row.status === 'done').length;
    const why = measured === 0 ? 'no variant produced a model' : `none of the ${measured} measured variants is ${budgetText} with fewer than its ${figure(baselineValue)}`;
    return { variant: baseline.variant, modelUri: baseline.modelUri, format: baseline.format, reason: `${why}: the uncompressed model stays` };
  }
  const reason =
    `best ${objective} of the ${candidates.length} variant(s) ${budgetText} that beat it: ${figure(objectiveValue(best, objective))} ` +
    `against ${figure(baselineValue)}, accuracy ${formatPercent(best.accuracy)}% (${formatSignedPoints(best.accuracyDelta)} pp)`;
  return { variant: best.variant, modelUri: best.modelUri, format: best.format, reason };
}

const formatPercent = (fraction: number) => (fraction * 100).toFixed(2);
const formatPoints = (fraction: number) => String(Number((fraction * 100).toFixed(4)));
const formatSignedPoints = (fraction: number) => `${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(2)}`;
const formatBytes = (bytes: number) => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);

/** The table as Markdown: one line per row, the baseline first, the chosen variant marked and explained below. */
export function renderTable(table: CompressionTable): string {
  const header = ['variant', 'runtime', 'accuracy', 'Δ pp', 'params (non-zero)', 'bytes', 'stored (gzip)', 'size ratio', 'batch-1 ms', 'batch-256 ms', 'speedup', 'within budget'];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const mark = (variant: string) => (variant === table.chosen.variant ? `**${variant}** ✓` : variant);
  const rowCells = (row: TableRow): string[] => {
    if (row.status === 'failed') return [mark(row.variant), `failed: ${row.error.replace(/\|/g, '\\|').replace(/\s+/g, ' ')}`, ...Array<string>(header.length - 2).fill('')];
    return [
      mark(row.variant),
      row.runtime,
      `${formatPercent(row.accuracy)}%`,
      formatSignedPoints(row.accuracyDelta),
      `${row.parameters} (${row.nonZeroParameters})`,
      formatBytes(row.bytes),
      formatBytes(row.sizeBytes),
      `${row.sizeRatio.toFixed(2)}x`,
      row.latencyMs.single.toFixed(3),
      row.latencyMs.batch.toFixed(2),
      `${row.speedup.toFixed(2)}x`,
      row.withinBudget ? 'yes' : 'no',
    ];
  };
  return [
    line(header),
    line(header.map(() => '---')),
    ...[table.baseline, ...table.rows].map((row) => line(rowCells(row))),
    '',
    `Chosen (objective: ${table.budget.objective}, max accuracy drop ${formatPoints(table.budget.maxAccuracyDrop)} pp): ${table.chosen.variant}: ${table.chosen.reason}.`,
  ].join('\n');
}
