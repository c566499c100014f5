import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import assert from 'node:assert/strict';
import type { z } from 'zod';
import { after, before, describe, it } from 'node:test';
import { artifactStore } from '../lib/artifacts';
import type { CompressionTable, MeasuredRow, TableRow } from '../lib/compression/choice';
import { registry } from '../lib/metrics';
import { DEFAULT_VARIANTS, type CompressModelInput } from '../lib/schemas/compress-model';
import type { compressionVariantSchema } from '../lib/schemas/compression';
import type { TrainProgress } from '../lib/training/train-job';
import { compressionProgressQuery, compressModel, trainModel, type CompressionProgress } from '../workflows';
import { preprocessDigits } from './helpers/digits';
import { invalidInputOf } from './helpers/failures';
import { runWorkersInProcess, startTemporal, startWorkerProcess, temporaryDataDir, type InProcessWorkers, type WorkerProcess } from './helpers/temporal';
import { trainingChildOf } from './helpers/training';
import { waitFor } from './helpers/wait';

type CompressionVariantInput = z.input<typeof compressionVariantSchema>;

const measured = (rows: TableRow[], variant: string): MeasuredRow => {
  const row = rows.find((r) => r.variant === variant);
  assert.ok(row?.status === 'done', `${variant} measured: ${JSON.stringify(row)}`);
  return row;
};

describe('compressModel end to end (real Temporal server, real worker processes)', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let dataDir: string;
  let trainWorker: WorkerProcess;
  let manifestUri: string;
  let modelUri: string;

  before(async () => {
    dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    env = await startTemporal();
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
    // Fine-tuning in a real worker process, with the production heartbeat settings, so it can be killed.
    trainWorker = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' });
    manifestUri = await preprocessDigits(1000);
    const teacher = await env.client.workflow.execute(trainModel, {
      taskQueue: 'ml-pipeline',
      workflowId: `compress-teacher-${Date.now()}`,
      args: [{ modelName: 'digits', manifestUri, model: { filters: [8, 16], hiddenUnits: [32], dropout: 0 }, training: { epochs: 4, batchSize: 32, learningRate: 0.005, earlyStopping: null } }],
    });
    modelUri = teacher.modelUri;
  });

  after(async () => {
    await trainWorker?.stop();
    await workers?.shutdown();
    await env?.teardown();
  });

  const start = (name: string, input: Partial<CompressModelInput>) =>
    env.client.workflow.start(compressModel, { taskQueue: 'ml-pipeline', workflowId: `${name}-${Date.now()}`, args: [{ modelName: 'digits', modelUri, manifestUri, ...input }] });
  const quickFineTuning = { epochs: 1, batchSize: 32 };
  /** A default variant with its training cut short (pruning masks updated often enough to fit) and a student smaller than the teacher. */
  const quick = (variant: CompressionVariantInput): CompressionVariantInput => {
    if (variant.method === 'prune') return { ...variant, frequency: 5, fineTuning: quickFineTuning };
    if (variant.method === 'structured-prune') return { ...variant, fineTuning: quickFineTuning };
    if (variant.method === 'distill') return { ...variant, student: { filters: [4, 8], hiddenUnits: [16] }, training: { epochs: 2, batchSize: 32, earlyStopping: null } };
    if (variant.method === 'chain') return { ...variant, steps: variant.steps.map((step) => quick(step) as typeof step) };
    return variant;
  };

  it('measures the baseline and the default variants on the test split, records a failing variant, and chooses within the budget', { timeout: 600_000 }, async () => {
    const handle = await start('compress', {
      variants: [
        ...DEFAULT_VARIANTS.map(quick),
        // Starts pruning after the fine-tuning has ended: refused by the activity, without retries.
        { method: 'prune', name: 'too-late', beginStep: 1_000_000, fineTuning: quickFineTuning },
      ],
      budget: { maxAccuracyDrop: 0.05, objective: 'size' },
      parallelism: 3,
    });
    const seen: CompressionProgress[] = [];
    let finished = false;
    const result = handle.result().finally(() => (finished = true));
    while (!finished) {
      const progress = await handle.query(compressionProgressQuery).catch(() => undefined);
      if (progress) seen.push(progress);
      await new Promise((r) => setTimeout(r, 200));
    }
    const { table, tableUri, markdown, chosen } = await result;
    console.log(markdown);

    const statuses = new Set(seen.flatMap((p) => p.variants.map((v) => v.status)));
    assert.ok(statuses.has('pending') && statuses.has('running'), `progress showed pending and running variants: ${[...statuses]}`);
    assert.ok(seen.every((p) => p.variants.filter((v) => v.status === 'running').length <= 3), 'never more running than the parallelism');
    const final = await handle.query(compressionProgressQuery);
    assert.equal(final.stage, 'done');
    assert.deepEqual(
      final.variants.map((v) => [v.variant, v.status]),
      [...['float16', 'uint8', 'int8', 'prune-80', 'structured-50', 'distill', 'prune-80+int8'].map((name) => [name, 'done']), ['too-late', 'failed']],
    );
    assert.match(final.variants[7]!.error!, /variant\.beginStep/);

    const { baseline, rows } = table;
    assert.equal(baseline.variant, 'baseline');
    assert.ok(baseline.accuracy > 0.6, `the teacher learned: ${baseline.accuracy}`);
    assert.equal(rows.length, 9);
    const failed = rows[8]!;
    assert.ok(failed.status === 'failed' && /variant\.beginStep/.test(failed.error), JSON.stringify(failed));
    const float16 = measured(rows, 'float16');
    const uint8 = measured(rows, 'uint8');
    assert.ok(float16.bytes < baseline.bytes * 0.55 && uint8.bytes < baseline.bytes * 0.3, `weights shrink: ${baseline.bytes} -> ${float16.bytes}, ${uint8.bytes}`);
    assert.ok(Math.abs(float16.accuracyDelta) <= 0.002, `float16 keeps the accuracy: ${float16.accuracyDelta}`);
    const pruned = measured(rows, 'prune-80');
    assert.ok(pruned.nonZeroParameters < pruned.parameters * 0.3, `${pruned.nonZeroParameters} of ${pruned.parameters} left`);
    assert.equal(pruned.alternates[0]?.label, 'sparse');
    assert.ok(pruned.sizeBytes < baseline.sizeBytes / 2);
    const structured = measured(rows, 'structured-50');
    assert.ok(structured.parameters < baseline.parameters * 0.6, `structured pruning removes units: ${structured.parameters}`);
    const int8 = measured(rows, 'int8');
    assert.equal(int8.format, 'onnx');
    assert.equal(int8.runtime, 'onnxruntime-node');
    assert.ok(int8.gzipBytes < baseline.gzipBytes / 2, `int8 weights: ${int8.gzipBytes} against ${baseline.gzipBytes}`);
    const distilled = measured(rows, 'distill');
    const labelsOnly = measured(rows, 'distill-without-distillation');
    assert.equal(distilled.parameters, labelsOnly.parameters);
    assert.ok(distilled.parameters < baseline.parameters / 3, `a smaller student: ${distilled.parameters} against ${baseline.parameters}`);
    const chain = measured(rows, 'prune-80+int8');
    assert.equal(chain.format, 'onnx');
    assert.deepEqual((chain.details.steps as { method: string }[]).map((s) => s.method), ['prune', 'int8']);
    for (const row of [float16, uint8, pruned, structured, distilled, labelsOnly]) assert.equal(row.runtime, baseline.runtime);
    for (const row of [float16, uint8, int8, pruned, structured, distilled, labelsOnly, chain]) {
      assert.ok(row.latencyMs.single > 0 && row.latencyMs.batch > 0);
      assert.equal(row.sizeRatio, baseline.sizeBytes / row.sizeBytes);
      assert.equal(row.accuracyDelta, row.accuracy - baseline.accuracy);
    }

    const qualifying = [float16, uint8, int8, pruned, structured, distilled, labelsOnly, chain].filter((r) => r.accuracyDelta >= -0.05 && r.sizeBytes < baseline.sizeBytes);
    const smallest = qualifying.reduce((best, r) => (r.sizeBytes < best.sizeBytes ? r : best));
    assert.equal(chosen.variant, smallest.variant);
    assert.equal(chosen.modelUri, smallest.modelUri);
    assert.match(chosen.reason, /^best size/);
    assert.deepEqual(await artifactStore().readJson<CompressionTable>(tableUri), table);
    for (const variant of ['baseline', ...rows.map((r) => r.variant)]) assert.ok(markdown.includes(`| ${variant}`) || markdown.includes(`**${variant}**`), variant);
    assert.match(markdown, /\| too-late \| failed: variant\.beginStep/);

    const ratio = await registry.getSingleMetricAsString('temporal_ml_compression_ratio');
    assert.ok(ratio.includes(`temporal_ml_compression_ratio{model="digits",variant="uint8"} ${uint8.sizeRatio}`), ratio);
    assert.ok(!ratio.includes('variant="too-late"'), 'no ratio for a failed variant');
    const delta = await registry.getSingleMetricAsString('temporal_ml_compression_accuracy_delta');
    assert.ok(delta.includes(`temporal_ml_compression_accuracy_delta{model="digits",variant="float16"} ${float16.accuracyDelta}`), delta);
  });

  it('resumes a pruning fine-tuning from its checkpoint after its worker is SIGKILLed, and completes', { timeout: 600_000 }, async () => {
    const handle = await start('compress-kill', { variants: [{ method: 'prune', finalSparsity: 0.5, fineTuning: { epochs: 6, batchSize: 8 } }] });
    const heartbeat = async (): Promise<TrainProgress | undefined> => {
      const pruning = (await handle.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === 'pruneModel');
      const payloads = pruning?.heartbeatDetails?.payloads;
      return payloads?.length ? decodeFromPayloadsAtIndex<TrainProgress>(env.client.options.loadedDataConverter, 0, payloads) : undefined;
    };
    const checkpointed = await waitFor('a heartbeated checkpoint', 120_000, async () => ((await heartbeat())?.checkpoint ? true : undefined));
    assert.ok(checkpointed);
    const child = trainingChildOf(trainWorker.process.pid!);
    trainWorker.process.kill('SIGKILL');
    if (child) process.kill(child, 'SIGKILL');
    await trainWorker.stop();
    trainWorker = await startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' });

    const resumed = await waitFor('a heartbeat from the resumed attempt', 120_000, async () => {
      const details = await heartbeat().catch(() => undefined);
      return details?.resumedFrom ? details : undefined;
    });
    assert.ok(resumed.resumedFrom!.epoch >= 1, JSON.stringify(resumed.resumedFrom));
    const { table } = await handle.result();
    const row = measured(table.rows, 'prune-50');
    const fineTuning = row.details.fineTuning as { epochs: number; resumes: unknown[] };
    assert.equal(fineTuning.epochs, 6);
    assert.ok(fineTuning.resumes.length >= 1, JSON.stringify(fineTuning));
    assert.ok(row.nonZeroParameters <= row.parameters * 0.55, `${row.nonZeroParameters} of ${row.parameters}`);
  });

  it('fails at once, naming the field, on bad input', { timeout: 120_000 }, async () => {
    const store = artifactStore();
    const cases: [Partial<CompressModelInput>, RegExp][] = [
      [{ variants: [{ method: 'zip' } as never] }, /variants\.0\.method: Invalid discriminator value/],
      [{ variants: [{ method: 'prune', finalSparsity: 1.5 }] }, /variants\.0\.finalSparsity: Too big/],
      [{ variants: [{ method: 'chain', steps: [{ method: 'int8' }, { method: 'quantize' }] }] }, /variants\.0\.steps: an onnx or int8 step can only be the last/],
      [{ modelUri: 'https://example.com/model' }, /modelUri: must be an artifact:\/\/ URI/],
      [{ modelUri: 'artifact://../etc' }, /^modelUri: .*outside/], [{ modelUri: 'file:///etc' }, /modelUri: must be an artifact:\/\/ URI/],
      [{ manifestUri: 'artifact://a/../../etc/hostname' }, /^manifestUri: .*outside/],
      [{ modelUri: store.uriOf('no-such-model') }, /^modelUri: no TensorFlow\.js layers model \(model\.json\)/],
      [{ modelUri: (await store.putDirectory({ 'model.json': Buffer.from('{"format":"graph-model","modelTopology":{}}') })).uri }, /^modelUri: .* is not a TensorFlow\.js layers model/],
      [{ manifestUri: (await store.putBlob(Buffer.from('not json'), '.json')).uri }, /^manifestUri: the dataset manifest .* is not valid JSON/],
    ];
    await Promise.all(
      cases.map(async ([input, message], index) => {
        const failure = await invalidInputOf((await start(`compress-bad-${index}`, input)).result());
        assert.match(failure.message, message);
      }),
    );
  });
});
