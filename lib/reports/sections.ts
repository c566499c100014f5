/** What each kind of run's report shows: its charts, figures and tables, built from the run's stored results. */
import type { CompressionTable, MeasuredRow } from '../compression/choice';
import type { RoundRecord } from '../distributed/rounds';
import type { EvaluationReport } from '../evaluation/evaluate-job';
import type { SweepMetric } from '../schemas/hyperparameter-sweep';
import type { TrialOutcome } from '../sweep';
import type { EpochRecord } from '../training/checkpoint';
import { barChart } from './bar-chart';
import type { ReportSection } from './document';
import { heatmap } from './heatmap';
import { lineChart } from './line-chart';
import { scatterChart, type LabelledPoint } from './scatter-chart';

const percent = (share: number, decimals = 2) => `${(share * 100).toFixed(decimals)}%`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const optional = (value: number | undefined, format: (value: number) => string) => (value === undefined || !Number.isFinite(value) ? '' : format(value));

/** Loss and accuracy per epoch, on the training and the validation split. */
export function trainingSection(history: EpochRecord[], bestEpoch?: number): ReportSection {
  const last = history.at(-1);
  const best = bestEpoch === undefined ? '' : `; weights of epoch ${bestEpoch} kept`;
  const subtitle = `${history.length} epoch${history.length === 1 ? '' : 's'}${best}`;
  const series = (name: string, y: (epoch: EpochRecord) => number | undefined, dashed = false) => ({
    name,
    dashed,
    points: history.flatMap((epoch) => (y(epoch) === undefined ? [] : [{ x: epoch.epoch, y: y(epoch)! }])),
  });
  const loss = lineChart({
    title: 'Loss per epoch',
    subtitle,
    xLabel: 'epoch',
    yLabel: 'loss (cross-entropy)',
    xInteger: true,
    series: [series('training', (e) => e.loss), series('validation', (e) => e.validationLoss, true)],
  });
  const accuracy = lineChart({
    title: 'Accuracy per epoch',
    subtitle,
    xLabel: 'epoch',
    yLabel: 'accuracy (%)',
    xInteger: true,
    yUnit: '%',
    series: [
      series('training', (e) => e.accuracy * 100),
      series('validation', (e) => (e.validationAccuracy === undefined ? undefined : e.validationAccuracy * 100), true),
    ],
  });
  return {
    heading: 'Training',
    facts: [
      ['epochs', String(history.length)],
      ['best epoch', bestEpoch === undefined ? '' : String(bestEpoch)],
      ['last training loss / accuracy', last ? `${last.loss.toFixed(4)} / ${percent(last.accuracy)}` : ''],
      ['last validation loss / accuracy', last?.validationLoss === undefined ? '' : `${last.validationLoss.toFixed(4)} / ${optional(last.validationAccuracy, percent)}`],
      ['training time', `${history.reduce((sum, epoch) => sum + epoch.seconds, 0).toFixed(1)} s`],
    ],
    figures: [
      { file: 'loss.png', title: 'Loss per epoch', chart: loss },
      { file: 'accuracy.png', title: 'Accuracy per epoch', chart: accuracy },
    ],
    tables: [],
  };
}

/** The confusion matrix and per-class scores of an evaluation, with the class names. */
export function evaluationSection(report: EvaluationReport): ReportSection {
  const macroF1 = report.perClass.reduce((sum, scores) => sum + scores.f1, 0) / Math.max(1, report.perClass.length);
  const confusion = heatmap({
    title: 'Confusion matrix',
    subtitle: `${report.split} split, ${report.count} images, accuracy ${percent(report.accuracy)}`,
    rowNames: report.classes,
    columnNames: report.classes,
    rowLabel: 'actual class',
    columnLabel: 'predicted class',
    values: report.confusion,
    valueLabel: 'images',
  });
  const f1 = barChart({
    title: 'F1 score per class',
    subtitle: `${report.split} split; macro-averaged F1 ${macroF1.toFixed(3)}`,
    xLabel: 'class',
    yLabel: 'F1 score (0 to 1)',
    bars: report.classes.map((label, index) => ({ label, value: report.perClass[index]?.f1 ?? 0 })),
    domain: [0, 1],
  });
  return {
    heading: `Evaluation on the ${report.split} split`,
    facts: [
      ['images', String(report.count)],
      ['accuracy', percent(report.accuracy)],
      ['loss', report.loss.toFixed(4)],
      ['parameters', `${report.parameterCount} (${report.nonZeroParameters} non-zero)`],
      ['model size', `${kib(report.modelBytes)} (${kib(report.gzipBytes)} gzipped)`],
      ['latency', report.latencyMs ? `${report.latencyMs.single.toFixed(3)} ms for one image, ${report.latencyMs.batch.toFixed(2)} ms for ${report.latencyMs.batchSize} in ${report.runtime}` : 'not timed'],
    ],
    figures: [
      { file: 'confusion-matrix.png', title: 'Confusion matrix', chart: confusion },
      { file: 'f1-per-class.png', title: 'F1 score per class', chart: f1 },
    ],
    tables: [
      {
        columns: ['class', 'precision', 'recall', 'F1'],
        rows: report.classes.map((name, index) => {
          const scores = report.perClass[index]!;
          return [name, scores.precision.toFixed(3), scores.recall.toFixed(3), scores.f1.toFixed(3)];
        }),
      },
    ],
  };
}

/** A row of a sweep's trial table; `rung` is set by searches that stop trials early (the highest rung a trial reached). */
export type TrialRow = TrialOutcome & { rung?: number };

const METRIC_TITLES: Record<SweepMetric, { name: string; axis: string }> = {
  validationAccuracy: { name: 'validation accuracy', axis: 'validation accuracy (%)' },
  validationLoss: { name: 'validation loss', axis: 'validation loss (cross-entropy)' },
};

/** Every trial's score, best ringed, coloured by rung where trials have one; failed trials in the table. */
export function sweepSection(trials: TrialRow[], metric: SweepMetric): ReportSection {
  const { name, axis } = METRIC_TITLES[metric];
  const asPercent = metric === 'validationAccuracy';
  const completed = trials.filter((trial) => trial.status === 'completed' && trial.score !== undefined);
  const best = completed.reduce<TrialRow | undefined>((top, trial) => (!top || (asPercent ? trial.score! > top.score! : trial.score! < top.score!) ? trial : top), undefined);
  const withRungs = trials.some((trial) => trial.rung !== undefined);
  const groupOf = (trial: TrialRow) => (trial.rung === undefined ? 'completed' : `rung ${trial.rung}`);
  const rungs = [...new Set(trials.flatMap((trial) => (trial.rung === undefined ? [] : [trial.rung])))].sort((a, b) => a - b);
  const points: LabelledPoint[] = completed.map((trial) => ({
    x: trial.trial,
    y: asPercent ? trial.score! * 100 : trial.score!,
    group: groupOf(trial),
    label: trial === best ? `#${trial.trial} best` : completed.length <= 30 ? `#${trial.trial}` : undefined,
    highlight: trial === best,
  }));
  const failed = trials.length - completed.length;
  const subtitle = [best ? `best: trial ${best.trial}, ${name} ${asPercent ? percent(best.score!) : best.score!.toFixed(4)}` : 'no trial completed'];
  if (failed) subtitle.push(`${failed} failed (not plotted)`);
  const chart = scatterChart({
    title: `${name[0]!.toUpperCase()}${name.slice(1)} per trial`,
    subtitle: subtitle.join('; '),
    xLabel: 'trial',
    yLabel: axis,
    xInteger: true,
    yUnit: asPercent ? '%' : undefined,
    points,
    groups: withRungs ? [...rungs.map((rung) => `rung ${rung}`), 'completed'] : ['completed'],
  });
  const score = (trial: TrialRow) => optional(trial.score, (value) => (asPercent ? percent(value) : value.toFixed(4)));
  return {
    heading: 'Trials',
    facts: [
      ['metric', name],
      ['trials', `${trials.length} (${failed} failed)`],
      ['best trial', best ? `${best.trial}: ${formatAssignment(best.assignment)}` : ''],
    ],
    figures: [{ file: 'trials.png', title: `${name} per trial`, chart }],
    tables: [
      {
        columns: ['trial', 'hyperparameters', ...(withRungs ? ['rung'] : []), 'status', name, 'epochs', 'test accuracy', 'error'],
        rows: trials.map((trial) => [
          String(trial.trial),
          formatAssignment(trial.assignment),
          ...(withRungs ? [trial.rung === undefined ? '' : String(trial.rung)] : []),
          trial.status,
          score(trial),
          trial.epochs === undefined ? '' : String(trial.epochs),
          optional(trial.testAccuracy, percent),
          trial.error ?? '',
        ]),
      },
    ],
  };
}

const formatAssignment = (assignment: Record<string, unknown>) =>
  Object.entries(assignment)
    .map(([path, value]) => `${path} = ${JSON.stringify(value)}`)
    .join(', ');

/** Size against accuracy of every measured variant, labelled, with the accuracy budget as a line; the whole table below. */
export function compressionSection(table: CompressionTable): ReportSection {
  const measured = table.rows.filter((row): row is MeasuredRow => row.status === 'done');
  const { baseline, budget, chosen } = table;
  const groupOf = (row: MeasuredRow) => (row === baseline ? 'baseline' : row.withinBudget ? 'within the accuracy budget' : 'over the accuracy budget');
  const points: LabelledPoint[] = [baseline, ...measured].map((row) => ({
    x: row.sizeBytes / 1024,
    y: row.accuracy * 100,
    label: row.variant,
    group: groupOf(row),
    highlight: row.variant === chosen.variant,
  }));
  const failed = table.rows.length - measured.length;
  const chart = scatterChart({
    title: 'Size against accuracy',
    subtitle: `chosen: ${chosen.variant} (ringed); objective ${budget.objective}${failed ? `; ${failed} failed (not plotted)` : ''}`,
    xLabel: 'stored size (KiB, gzipped)',
    yLabel: 'test accuracy (%)',
    xIncludeZero: true,
    yUnit: '%',
    reference: { y: (baseline.accuracy - budget.maxAccuracyDrop) * 100, label: `budget: ${(budget.maxAccuracyDrop * 100).toFixed(1)} pp below baseline` },
    points,
    groups: ['baseline', 'within the accuracy budget', 'over the accuracy budget'],
    colors: { baseline: '#555555', 'within the accuracy budget': '#009E73', 'over the accuracy budget': '#D55E00' },
  });
  return {
    heading: 'Compression',
    facts: [
      ['chosen', chosen.variant],
      ['why', chosen.reason],
      ['budget', `at most ${(budget.maxAccuracyDrop * 100).toFixed(2)} pp below the baseline's accuracy; objective ${budget.objective}`],
    ],
    figures: [{ file: 'compression.png', title: 'Size against accuracy', chart }],
    tables: [
      {
        columns: ['variant', 'method', 'runtime', 'test accuracy', 'Δ pp', 'stored (gzip)', 'size ratio', 'batch-256 ms', 'speedup', 'within budget'],
        rows: [baseline, ...table.rows].map((row) =>
          row.status === 'done'
            ? [
                row.variant,
                row.method,
                row.runtime,
                percent(row.accuracy),
                (row.accuracyDelta * 100).toFixed(2),
                kib(row.sizeBytes),
                `${row.sizeRatio.toFixed(2)}x`,
                row.latencyMs.batch.toFixed(2),
                `${row.speedup.toFixed(2)}x`,
                row.withinBudget ? 'yes' : 'no',
              ]
            : [row.variant, row.method, '', '', '', '', '', '', '', `failed: ${row.error}`],
        ),
      },
    ],
  };
}

/** Validation accuracy of the global model after every round, against wall time from the start of the run. */
export function roundsSection(rounds: RoundRecord[]): ReportSection {
  const last = rounds.at(-1);
  const chart = lineChart({
    title: 'Validation accuracy against wall time',
    subtitle: last ? `${rounds.length} round${rounds.length === 1 ? '' : 's'} in ${last.seconds.toFixed(0)} s; one point per round` : 'no round completed',
    xLabel: 'wall time since the start of the run (s)',
    yLabel: 'validation accuracy (%)',
    xIncludeZero: true,
    yUnit: '%',
    series: [{ name: 'global model after each round', points: rounds.map((round) => ({ x: round.seconds, y: round.validationAccuracy * 100 })) }],
  });
  return {
    heading: 'Distributed rounds',
    facts: [
      ['rounds', String(rounds.length)],
      ['final validation accuracy', last ? percent(last.validationAccuracy) : ''],
      ['wall time', last ? `${last.seconds.toFixed(1)} s` : ''],
    ],
    figures: [{ file: 'rounds.png', title: 'Validation accuracy against wall time', chart }],
    tables: [
      {
        columns: ['round', 'seconds', 'validation accuracy', 'validation loss', 'training loss', 'updates', 'skipped partitions', 'dropped stale', 'aggregation s'],
        rows: rounds.map((round) => [
          String(round.round),
          round.seconds.toFixed(1),
          percent(round.validationAccuracy),
          round.validationLoss.toFixed(4),
          optional(round.trainLoss, (value) => value.toFixed(4)),
          String(round.updates),
          round.skipped.join(', '),
          String(round.droppedStale),
          round.aggregationSeconds.toFixed(2),
        ]),
      },
    ],
  };
}
