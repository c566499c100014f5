/**
 * `npm run bench:compress`: every compression target of the project, in one run. Trains the reference CNN on the full,
 * real Fashion-MNIST (once: a re-run with the same data, model and training reuses the stored model), runs the
 * `compressModel` workflow on it with one variant of each target on a real Temporal dev server with workers in this
 * process, and prints each figure against its target. Variants run one at a time, so no latency is measured while
 * another variant trains.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { artifactStore } from '../lib/artifacts';
import type { CompressionTable, MeasuredRow, TableRow } from '../lib/compression/choice';
import { readStoredModel } from '../lib/evaluation/stored-model';
import type { CompressModelInput } from '../lib/schemas/compress-model';
import { trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { trainJob } from '../lib/training/train-job';
import { runWorkersInProcess, startTemporal } from '../workers/in-process';
import { compressModel } from '../workflows';
import { fashionMnistManifest } from './fashion-mnist';
import { REFERENCE_MODELS } from './reference-models';

const TEACHER = {
  model: REFERENCE_MODELS.cnn,
  training: trainingSpecSchema.parse({
    epochs: 10,
    batchSize: 256,
    learningRate: 0.002,
    learningRateSchedule: { type: 'cosine' },
    earlyStopping: { monitor: 'validationAccuracy', patience: 5 },
  }),
};

/** One variant per target; `onnx` is the float32 ONNX model the int8 one is timed against. */
const VARIANTS: CompressModelInput['variants'] = [
  { method: 'quantize', dtype: 'float16' },
  { method: 'quantize', dtype: 'uint8' },
  { method: 'onnx' },
  { method: 'int8' },
  { method: 'prune', finalSparsity: 0.8 },
  { method: 'structured-prune', fraction: 0.5 },
  { method: 'distill' },
  { method: 'chain', steps: [{ method: 'prune', finalSparsity: 0.8 }, { method: 'int8' }] },
];

/** The trained reference CNN: stored once per manifest, architecture and training; found again by that key. */
async function teacher(manifestUri: string): Promise<string> {
  const store = artifactStore();
  const key = createHash('sha256').update(JSON.stringify({ manifestUri, ...TEACHER })).digest('hex');
  const pointer = `bench/compress-teacher-${key}.json`;
  if (await store.exists(pointer)) {
    const { modelUri } = await store.readJson<{ modelUri: string }>(pointer);
    if (await store.exists(modelUri)) {
      console.log(`teacher: the reference CNN trained earlier, ${modelUri}`);
      return modelUri;
    }
  }
  console.log('teacher: training the reference CNN on Fashion-MNIST (cached for later runs)');
  const { modelUri } = await trainJob({ artifacts: await artifactStore().describeForChild(), manifestUri, ...TEACHER }, (p) => {
    const e = p.finishedEpoch;
    if (e) console.log(`  epoch ${e.epoch}: loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(4)} val_acc ${e.validationAccuracy?.toFixed(4)} ${e.seconds.toFixed(1)} s`);
  });
  await store.putNamed(pointer, JSON.stringify({ modelUri }));
  return modelUri;
}

/** Bytes of a stored TensorFlow.js model's weight files (everything but model.json). */
async function weightFileBytes(row: MeasuredRow): Promise<number> {
  const files = await readStoredModel(artifactStore(), { format: row.format, uri: row.modelUri });
  return Object.entries(files).reduce((n, [name, bytes]) => (name === 'model.json' ? n : n + bytes.byteLength), 0);
}

interface Check {
  variant: string;
  figure: string;
  measured: string;
  target: string;
  met: boolean;
}

const pp = (fraction: number) => `${(fraction * 100).toFixed(2)} pp`;
const times = (ratio: number) => `${ratio.toFixed(2)}x`;
const ms = (value: number) => `${value.toFixed(2)} ms`;

/** Each figure of the targets table, measured against the baseline (and against other rows where the target says so). */
async function checks(table: CompressionTable): Promise<Check[]> {
  const base = table.baseline;
  const rows = new Map<string, TableRow>([...table.rows.map((r) => [r.variant, r] as const)]);
  const out: Check[] = [];
  /** Runs `measure` on the named rows, or records every figure as missed with the reason a row is missing. */
  const forRows = async (names: string[], figures: string[], measure: (...rows: MeasuredRow[]) => Promise<Omit<Check, 'variant'>[]> | Omit<Check, 'variant'>[]) => {
    const found = names.map((name) => rows.get(name));
    const missing = found.findIndex((row) => row?.status !== 'done');
    if (missing >= 0) {
      const row = found[missing];
      const why = row?.status === 'failed' ? `failed: ${row.error}` : 'not in the table';
      for (const figure of figures) out.push({ variant: names[0]!, figure, measured: `${names[missing]} ${why}`, target: '', met: false });
      return;
    }
    for (const check of await measure(...(found as MeasuredRow[]))) out.push({ variant: names[0]!, ...check });
  };
  const drop = (row: MeasuredRow, most: number) => {
    const value = base.accuracy - row.accuracy;
    return { figure: 'accuracy drop', measured: pp(value), target: `<= ${most} pp`, met: value * 100 <= most + 1e-9 };
  };
  const smaller = (figure: string, ratio: number, least: number) => ({ figure, measured: times(ratio), target: `>= ${least}x`, met: ratio >= least });

  const baseWeights = await weightFileBytes(base);
  for (const [name, least, most] of [['float16', 1.99, 0.05], ['uint8', 3.9, 0.3]] as const) {
    await forRows([name], ['weight file smaller', 'accuracy drop'], async (row) => [smaller('weight file smaller', baseWeights / (await weightFileBytes(row)), least), drop(row, most)]);
  }
  await forRows(['int8', 'onnx-float32'], ['accuracy drop', 'batch-256 faster than float32 ONNX'], (int8, onnx) => [
    drop(int8, 0.5),
    {
      ...smaller('batch-256 faster than float32 ONNX', onnx.latencyMs.batch / int8.latencyMs.batch, 1.5),
      figure: `batch-256 faster than float32 ONNX (int8 ${ms(int8.latencyMs.batch)}, float32 ONNX ${ms(onnx.latencyMs.batch)}, ${base.runtime} float32 ${ms(base.latencyMs.batch)})`,
    },
  ]);
  await forRows(['prune-80'], ['accuracy drop', 'gzip smaller'], (row) => [drop(row, 1), smaller('gzip smaller', base.gzipBytes / row.gzipBytes, 3)]);
  await forRows(['structured-50'], ['accuracy drop', `batch-256 faster in ${base.runtime}`], (row) => [
    drop(row, 1.5),
    smaller(`batch-256 faster in ${row.runtime} (${ms(row.latencyMs.batch)} vs ${ms(base.latencyMs.batch)})`, base.latencyMs.batch / row.latencyMs.batch, 1.5),
  ]);
  await forRows(['distill', 'distill-without-distillation'], ['fewer parameters', 'gap to the teacher', 'better than without distillation'], (student, alone) => [
    smaller('fewer parameters', base.parameters / student.parameters, 5),
    { ...drop(student, 1.5), figure: 'gap to the teacher' },
    {
      figure: 'better than without distillation',
      measured: `${pp(student.accuracy - alone.accuracy)} (${(student.accuracy * 100).toFixed(2)}% vs ${(alone.accuracy * 100).toFixed(2)}%)`,
      target: '> 0 pp',
      met: student.accuracy > alone.accuracy,
    },
  ]);
  await forRows(['prune-80+int8'], ['gzip smaller than the float32 teacher', 'accuracy drop'], (row) => [
    smaller('gzip smaller than the float32 teacher', base.gzipBytes / row.gzipBytes, 10),
    drop(row, 1.5),
  ]);
  return out;
}

function printChecks(list: Check[]): void {
  const header = ['variant', 'figure', 'measured', 'target', ''];
  const lines = list.map((c) => [c.variant, c.figure, c.measured, c.target, c.met ? 'met' : 'MISSED']);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const line of [header, ...lines]) console.log(line.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  console.log(`\n${list.filter((c) => c.met).length} of ${list.length} targets met`);
}

async function main(): Promise<void> {
  const dir = resolve(process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist');
  if (tensorflow().backend !== 'tensorflow') throw new Error('bench:compress measures native TensorFlow; run `npm run provision` first.');
  const manifestUri = await fashionMnistManifest(dir);
  console.log(`Fashion-MNIST from ${dir}: manifest ${manifestUri}`);
  const modelUri = await teacher(manifestUri);

  const env = await startTemporal();
  const workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu', 'ml-train']);
  try {
    const started = performance.now();
    const input: CompressModelInput = { modelName: 'bench-compress', modelUri, manifestUri, variants: VARIANTS, parallelism: 1 };
    const result = await env.client.workflow.execute(compressModel, {
      taskQueue: 'ml-pipeline',
      workflowId: `bench-compress-${Date.now()}`,
      args: [input],
    });
    console.log(`\ncompressModel finished in ${((performance.now() - started) / 1000).toFixed(0)} s\n\n${result.markdown}\n`);
    printChecks(await checks(result.table));
  } finally {
    await workers.shutdown();
    await env.teardown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
