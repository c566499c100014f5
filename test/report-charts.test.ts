import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import type { CompressionTable, MeasuredRow } from '../lib/compression/choice';
import type { EvaluationReport } from '../lib/evaluation/evaluate-job';
import { barChart } from '../lib/reports/bar-chart';
import { prefixedSections, storedSection } from '../lib/reports/document';
import { heatColor, heatmap } from '../lib/reports/heatmap';
import { reportHtml } from '../lib/reports/html';
import { lineChart } from '../lib/reports/line-chart';
import { renderPng } from '../lib/reports/png';
import { linearAxis, project } from '../lib/reports/scale';
import { scatterChart } from '../lib/reports/scatter-chart';
import { compressionSection, evaluationSection, roundsSection, sweepSection, trainingSection, type TrialRow } from '../lib/reports/sections';
import type { EpochRecord } from '../lib/training/checkpoint';

/** The text of every <text> element of an SVG, unescaped. */
function textsOf(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&'));
}

const epoch = (n: number, loss: number, accuracy: number, validation = true): EpochRecord => ({
  epoch: n,
  learningRate: 0.001,
  loss,
  accuracy,
  ...(validation ? { validationLoss: loss + 0.1, validationAccuracy: accuracy - 0.02 } : {}),
  seconds: 1.5,
});

function evaluation(classes: string[], confusion: number[][]): EvaluationReport {
  return {
    accuracy: 0.9,
    loss: 0.3,
    count: confusion.flat().reduce((a, b) => a + b, 0),
    parameterCount: 100,
    nonZeroParameters: 90,
    modelBytes: 4096,
    gzipBytes: 2048,
    runtime: 'tfjs-node',
    latencyMs: { single: 1, batch: 20, batchSize: 256 },
    dataLoading: 'memory',
    modelUri: 'artifact://m',
    format: 'tfjs-layers',
    manifestUri: 'artifact://manifest.json',
    split: 'test',
    classes,
    confusion,
    perClass: classes.map((_, i) => ({ precision: 0.5 + i / 10, recall: 0.6, f1: 0.55 + i / 20 })),
  };
}

describe('chart scales', () => {
  it('puts round ticks around the data, with the decimals the step needs', () => {
    const axis = linearAxis([0.23, 1.41]);
    assert.deepEqual(axis.ticks, [0, 0.5, 1, 1.5]);
    assert.equal(axis.decimals, 1);
    assert.deepEqual([axis.min, axis.max], [0, 1.5]);
    assert.deepEqual(linearAxis([81.5, 93.2]).ticks, [80, 85, 90, 95]);
    assert.deepEqual(linearAxis([120, 760], { includeZero: true }).ticks, [0, 200, 400, 600, 800]);
  });

  it('counts get whole-number ticks, padded half a step so the first and last points are inside the frame', () => {
    const axis = linearAxis([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], { integer: true });
    assert.deepEqual(axis.ticks, [2, 4, 6, 8, 10, 12]);
    assert.deepEqual([axis.min, axis.max], [0.5, 12.5]);
  });

  it('a single value, no value and non-finite values still give a usable axis', () => {
    const one = linearAxis([1], { integer: true });
    assert.deepEqual(one.ticks, [1]);
    assert.ok(one.min < 1 && one.max > 1);
    const flat = linearAxis([0.42, 0.42]);
    assert.ok(flat.min < 0.42 && flat.max > 0.42 && flat.ticks.length >= 2, JSON.stringify(flat));
    assert.deepEqual(linearAxis([]).ticks.at(0), 0);
    assert.ok(linearAxis([NaN, Infinity, 3]).ticks.includes(3));
  });

  it('projects the axis ends onto the pixel range, upside down for y', () => {
    const axis = linearAxis([0, 1]);
    assert.equal(project(axis, axis.min, 300, 20), 300);
    assert.equal(project(axis, axis.max, 300, 20), 20);
  });
});

describe('chart builders', () => {
  it('a line chart has its title, axis titles with units, tick labels, a legend entry and a line per series', () => {
    const chart = lineChart({
      title: 'Loss per epoch',
      xLabel: 'epoch',
      yLabel: 'loss (cross-entropy)',
      xInteger: true,
      series: [
        { name: 'training', points: [{ x: 1, y: 1.2 }, { x: 2, y: 0.8 }, { x: 3, y: NaN }] },
        { name: 'validation', points: [{ x: 1, y: 1.3 }, { x: 2, y: 0.9 }], dashed: true },
        { name: 'never measured', points: [] },
      ],
    });
    const texts = textsOf(chart.svg);
    for (const expected of ['Loss per epoch', 'epoch', 'loss (cross-entropy)', 'training', 'validation', '1', '2', '0.8', '1.2']) assert.ok(texts.includes(expected), `${expected} in ${texts}`);
    assert.ok(!texts.includes('never measured'), 'a series without points has no legend entry');
    assert.equal(chart.svg.match(/<path /g)?.length, 2);
    assert.equal(chart.svg.match(/stroke-dasharray="6 4"/g)?.length, 2, 'the validation line and its legend swatch are dashed');
    // 4 finite points, and one marker per legend entry.
    assert.equal(chart.svg.match(/<circle /g)?.length, 4 + 2);
    assert.match(chart.svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="720" height="400"/);
  });

  it('y tick labels carry the unit and the same decimals', () => {
    const chart = lineChart({ title: 't', xLabel: 'x', yLabel: 'accuracy (%)', yUnit: '%', series: [{ name: 's', points: [{ x: 1, y: 13.9 }, { x: 2, y: 14.9 }] }] });
    const ticks = textsOf(chart.svg).filter((t) => t.endsWith('%'));
    assert.deepEqual(ticks, ['13.8%', '14.0%', '14.2%', '14.4%', '14.6%', '14.8%', '15.0%']);
  });

  it('one epoch is one marker per series on a one-tick axis; no data at all says so', () => {
    const section = trainingSection([epoch(1, 0.7, 0.8)], 1);
    const loss = section.figures[0]!.chart.svg;
    assert.equal(loss.match(/<circle /g)?.length, 2 + 2);
    assert.ok(textsOf(loss).includes('1'));
    const empty = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [] }] });
    assert.ok(textsOf(empty.svg).includes('no data'));
  });

  it('training without a validation split draws the training curves alone', () => {
    const section = trainingSection([epoch(1, 0.9, 0.7, false), epoch(2, 0.5, 0.85, false)], 2);
    const [loss, accuracy] = section.figures.map((figure) => textsOf(figure.chart.svg));
    assert.ok(loss!.includes('training') && !loss!.includes('validation'));
    assert.ok(accuracy!.includes('accuracy (%)') && accuracy!.includes('80%'), accuracy!.join('|'));
    assert.deepEqual(
      section.figures.map((figure) => figure.file),
      ['loss.png', 'accuracy.png'],
    );
  });

  it('the heatmap colours the largest cell darkest and an empty one palest, with every class name on both axes', () => {
    const classes = ['T-shirt/top', 'Trouser', 'Ankle <boot> & co'];
    const chart = heatmap({
      title: 'Confusion matrix',
      rowNames: classes,
      columnNames: classes,
      rowLabel: 'actual class',
      columnLabel: 'predicted class',
      values: [
        [50, 2, 0],
        [3, 97, 1],
        [0, 4, 60],
      ],
      valueLabel: 'images',
    });
    const fillOf = (count: number) => new RegExp(`fill="(#[0-9a-f]{6})" stroke="white" data-count="${count}"`).exec(chart.svg)?.[1];
    assert.equal(fillOf(97), heatColor(1));
    assert.equal(heatColor(1), '#08306b');
    assert.equal(fillOf(0), heatColor(0));
    assert.equal(heatColor(0), '#f7fbff');
    const cells = [...chart.svg.matchAll(/fill="#([0-9a-f]{6})" stroke="white" data-count="(\d+)"/g)];
    const darkness = (hex: string) => 765 - [0, 2, 4].reduce((sum, i) => sum + parseInt(hex.slice(i, i + 2), 16), 0);
    const darkest = cells.reduce((a, b) => (darkness(b[1]!) > darkness(a[1]!) ? b : a));
    assert.equal(darkest[2], '97');
    const texts = textsOf(chart.svg);
    for (const name of classes) assert.equal(texts.filter((t) => t === name).length, 2, `${name} labels a row and a column`);
    assert.ok(chart.svg.includes('Ankle &lt;boot&gt; &amp; co'), 'class names are escaped');
    for (const expected of ['actual class', 'predicted class', '97', 'images']) assert.ok(texts.includes(expected), expected);
  });

  it('a one-class confusion matrix and per-class F1 still draw', () => {
    const section = evaluationSection(evaluation(['only'], [[5]]));
    const [confusion, f1] = section.figures.map((figure) => figure.chart);
    assert.match(confusion!.svg, /data-count="5"/);
    assert.equal(textsOf(confusion!.svg).filter((t) => t === 'only').length, 2);
    assert.ok(textsOf(f1!.svg).includes('only'));
    assert.equal(f1!.svg.match(/<rect /g)?.length, 1 + 1, 'the background and one bar');
  });

  it('per-class F1 bars are labelled with class names and values on a 0 to 1 axis', () => {
    const section = evaluationSection(evaluation(['zero', 'one', 'two'], [[5, 1, 0], [0, 6, 0], [1, 0, 7]]));
    const texts = textsOf(section.figures[1]!.chart.svg);
    for (const expected of ['zero', 'one', 'two', '0.55', '0.60', '0.65', '0.0', '1.0', 'F1 score (0 to 1)', 'class']) assert.ok(texts.includes(expected), `${expected} in ${texts}`);
    const bars = barChart({ title: 't', xLabel: 'x', yLabel: 'y', bars: Array.from({ length: 10 }, (_, i) => ({ label: `a long class name ${i}`, value: 0.5 })) });
    assert.match(bars.svg, /rotate\(-40 /, 'names too long for their slot are slanted');
  });

  it('scatter labels move aside instead of covering each other', () => {
    const chart = scatterChart({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      points: [
        { x: 10, y: 90, label: 'uint8', group: 'a' },
        { x: 10.2, y: 90, label: 'int8', group: 'a', highlight: true },
        { x: 50, y: 80, label: 'float16', group: 'b' },
      ],
      groups: ['a', 'b', 'unused'],
    });
    const labels = [...chart.svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)"[^>]*>(uint8|int8|float16)</g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]), label: m[3]! }));
    assert.deepEqual(labels.map((l) => l.label).sort(), ['float16', 'int8', 'uint8']);
    const [first, second] = labels.filter((l) => l.label !== 'float16');
    assert.ok(Math.abs(first!.y - second!.y) >= 12 || Math.abs(first!.x - second!.x) >= 40, `labels at ${JSON.stringify(labels)} overlap`);
    assert.match(chart.svg, /font-weight="bold"[^>]*>int8</);
    assert.ok(!textsOf(chart.svg).includes('unused'), 'a group without points has no legend entry');
  });
});

describe('report sections', () => {
  const trial = (n: number, score: number | undefined, rung?: number): TrialRow => ({
    trial: n,
    workflowId: `sweep-trial-${n}`,
    assignment: { 'training.learningRate': 0.01 * n },
    status: score === undefined ? 'failed' : 'completed',
    score,
    epochs: 2,
    error: score === undefined ? 'loss diverged' : undefined,
    ...(rung === undefined ? {} : { rung }),
  });

  it('sweep trials: the metric per trial, the best ringed, failed ones counted and tabled', () => {
    const section = sweepSection([trial(1, 0.8), trial(2, 0.9), trial(3, undefined)], 'validationAccuracy');
    const texts = textsOf(section.figures[0]!.chart.svg);
    assert.ok(texts.includes('#2 best') && texts.includes('#1'), texts.join('|'));
    assert.ok(texts.includes('validation accuracy (%)') && texts.includes('trial'));
    assert.ok(texts.some((t) => t.includes('1 failed (not plotted)')));
    assert.deepEqual(section.tables[0]!.rows.map((row) => row[2]), ['completed', 'completed', 'failed']);
    assert.ok(!section.tables[0]!.columns.includes('rung'));
    const loss = sweepSection([trial(1, 0.4), trial(2, 0.3)], 'validationLoss');
    assert.ok(textsOf(loss.figures[0]!.chart.svg).includes('#2 best'), 'the lowest loss is best');
  });

  it('sweep trials with rungs: one colour and legend entry per rung, and a rung column', () => {
    const section = sweepSection([trial(1, 0.8, 0), trial(2, 0.9, 1), trial(3, 0.85, 1)], 'validationAccuracy');
    const texts = textsOf(section.figures[0]!.chart.svg);
    assert.ok(texts.includes('rung 0') && texts.includes('rung 1') && !texts.includes('completed'), texts.join('|'));
    const table = section.tables[0]!;
    const rung = table.columns.indexOf('rung');
    assert.deepEqual(table.rows.map((row) => row[rung]), ['0', '1', '1']);
  });

  it('compression: size against accuracy with every variant labelled, the chosen one bold, the budget drawn', () => {
    const row = (variant: string, accuracy: number, sizeBytes: number, withinBudget: boolean): MeasuredRow =>
      ({ variant, method: 'quantize', status: 'done', runtime: 'tfjs-node', accuracy, sizeBytes, accuracyDelta: accuracy - 0.92, sizeRatio: 800_000 / sizeBytes, latencyMs: { single: 1, batch: 30, batchSize: 256 }, speedup: 1, withinBudget }) as MeasuredRow;
    const table: CompressionTable = {
      modelName: 'm',
      budget: { maxAccuracyDrop: 0.01, objective: 'size' },
      baseline: row('baseline', 0.92, 800_000, true),
      rows: [row('float16', 0.92, 400_000, true), row('int8', 0.915, 200_000, true), row('distill', 0.85, 50_000, false), { variant: 'onnx-float32', method: 'onnx', status: 'failed', error: 'no' }],
      chosen: { variant: 'int8', modelUri: 'artifact://x', format: 'onnx', reason: 'smallest' },
    };
    const section = compressionSection(table);
    const chart = section.figures[0]!.chart.svg;
    const texts = textsOf(chart);
    for (const expected of ['baseline', 'float16', 'int8', 'distill', 'stored size (KiB, gzipped)', 'test accuracy (%)', 'within the accuracy budget', 'over the accuracy budget']) {
      assert.ok(texts.includes(expected), `${expected} in ${texts.join('|')}`);
    }
    assert.ok(texts.some((t) => t.startsWith('budget: 1.0 pp below baseline')));
    assert.match(chart, /font-weight="bold"[^>]*>int8</);
    assert.ok(texts.some((t) => t.includes('1 failed (not plotted)')));
    assert.equal(section.tables[0]!.rows.at(-1)![9], 'failed: no');
  });

  it('distributed rounds: validation accuracy against wall time, one point per round', () => {
    const rounds = [1, 2, 3].map((round) => ({ round, seconds: 30 * round, validationAccuracy: 0.6 + 0.1 * round, validationLoss: 0.5, trainLoss: 0.4, updates: 2, skipped: [], droppedStale: 0, aggregationSeconds: 0.2 }));
    const chart = roundsSection(rounds).figures[0]!.chart.svg;
    assert.equal(chart.match(/<circle /g)?.length, 3 + 1);
    const texts = textsOf(chart);
    assert.ok(texts.includes('wall time since the start of the run (s)') && texts.includes('validation accuracy (%)'));
    assert.ok(textsOf(roundsSection([]).figures[0]!.chart.svg).includes('no data'));
  });
});

describe('report rendering', () => {
  it('renders a chart to a PNG of its stated size that is not blank', async () => {
    const { chart } = evaluationSection(evaluation(['a', 'b'], [[9, 1], [2, 8]])).figures[0]!;
    const png = await renderPng(chart);
    const image = sharp(png);
    const metadata = await image.metadata();
    assert.equal(metadata.format, 'png');
    assert.deepEqual([metadata.width, metadata.height], [chart.width, chart.height]);
    const { channels } = await image.stats();
    // White background with dark text and cells: some pixels near black, and the image varies.
    assert.ok(channels.slice(0, 3).every((channel) => channel.min < 60 && channel.max === 255 && channel.stdev > 10), JSON.stringify(channels));
  });

  it('the HTML page embeds every figure by its file name, escapes text, and renames included figures by prefix', () => {
    const sections = [trainingSection([epoch(1, 0.5, 0.8)], 1), evaluationSection(evaluation(['<a>', 'b'], [[1, 0], [0, 1]]))].map(storedSection);
    const html = reportHtml({ title: 'trainModel run-1 & co', sections: [...sections, ...prefixedSections(sections.slice(0, 1), 'training')] });
    for (const file of ['loss.png', 'accuracy.png', 'confusion-matrix.png', 'f1-per-class.png', 'training-loss.png', 'training-accuracy.png']) assert.ok(html.includes(`<img src="${file}"`), file);
    assert.ok(html.includes('<title>trainModel run-1 &amp; co</title>'));
    assert.ok(html.includes('<td>&lt;a&gt;</td>') && !html.includes('<a>'));
  });
});
