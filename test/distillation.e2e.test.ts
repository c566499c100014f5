import type { WorkflowHandle } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import assert from 'node:assert/strict';
import { rename } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { DistillModelInput } from '../activities/distillation';
import { artifactStore } from '../lib/artifacts';
import { logitsOf } from '../lib/compression/distillation';
import { readManifest } from '../lib/datasets/manifest';
import { loadSplit } from '../lib/datasets/shards';
import { evaluateJob } from '../lib/evaluation/evaluate-job';
import { modelFromFiles, saveModel } from '../lib/model-io';
import { buildModel } from '../lib/models';
import { decodeNpy, encodeNpy } from '../lib/npy';
import { seededPermutation } from '../lib/random';
import { distillVariantSchema, type DistillVariant } from '../lib/schemas/compression';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { trainJob, type TrainProgress } from '../lib/training/train-job';
import { distillProbe, teacherLogitsProbe } from './fixtures/distillation-probe';
import { preprocessDigits } from './helpers/digits';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';
import { trainingChildOf } from './helpers/training';
import { invalidInputOf } from './helpers/failures';
import { waitFor } from './helpers/wait';
import { localArtifactStore } from './helpers/local-store';

const { EventType } = temporal.api.enums.v1;
const PROBE_QUEUE = 'distillation-probe';
const { tf } = tensorflow();

describe('distillation (real Temporal server, real training processes, built-in digits)', () => {
  let env: TestWorkflowEnvironment;
  let activityWorkers: InProcessWorkers;
  let probeWorker: Worker;
  let probeRunning: Promise<void>;
  let manifestUri: string;
  let teacherUri: string;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    env = await startTemporal();
    activityWorkers = await runWorkersInProcess(env, ['ml-cpu', 'ml-train']);
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/distillation-probe') });
    probeWorker = await Worker.create({ connection: env.nativeConnection, taskQueue: PROBE_QUEUE, workflowBundle: { code } });
    probeRunning = probeWorker.run();
    manifestUri = await preprocessDigits(3000);
    const teacher = await trainJob(
      {
        artifacts: await artifactStore().describeForChild(),
        manifestUri,
        model: modelSpecSchema.parse({ architecture: 'cnn', filters: [8, 16], hiddenUnits: [64], dropout: 0 }),
        training: trainingSpecSchema.parse({ epochs: 3, batchSize: 32, earlyStopping: null }),
      },
      () => undefined,
    );
    teacherUri = teacher.modelUri;
  });

  after(async () => {
    probeWorker.shutdown();
    await probeRunning;
    await activityWorkers.shutdown();
    await env.teardown();
  });

  const run = <A extends unknown[], R>(workflow: (...args: A) => Promise<R>, name: string, ...args: A): Promise<WorkflowHandle<typeof workflow>> =>
    env.client.workflow.start(workflow, { taskQueue: PROBE_QUEUE, workflowId: `${name}-${Date.now()}`, args }) as Promise<WorkflowHandle<typeof workflow>>;

  const variant = (overrides: Partial<DistillVariant> = {}): DistillVariant =>
    distillVariantSchema.parse({
      method: 'distill',
      student: { architecture: 'mlp', hiddenUnits: [16], dropout: 0 },
      training: { epochs: 3, batchSize: 32, earlyStopping: null },
      ...overrides,
    });

  const distill = (name: string, input: Partial<Omit<DistillModelInput, 'teacherLogitsUri'>> = {}) =>
    run(distillProbe, name, { modelName: 'distillation-test', teacherUri, manifestUri, variant: variant(), ...input });

  async function testAccuracy(modelUri: string, manifest = manifestUri): Promise<number> {
    return (await evaluateJob({ artifacts: await artifactStore().describeForChild(), modelUri, manifestUri: manifest, split: 'test' }, () => undefined)).accuracy;
  }

  /** Runs `body` with the teacher model out of the store: anything that still needs it fails. */
  async function withoutTeacher<T>(body: () => Promise<T>): Promise<T> {
    const path = localArtifactStore().pathOf(teacherUri);
    await rename(path, `${path}.away`);
    try {
      return await body();
    } finally {
      await rename(`${path}.away`, path);
    }
  }

  it("stores the teacher's logits for the training split once; a second call does no inference and returns the same URI", { timeout: 300_000 }, async () => {
    const first = await (await run(teacherLogitsProbe, 'logits', teacherUri, manifestUri)).result();
    const store = artifactStore();
    const stored = decodeNpy(await store.read(first.uri));
    const manifest = await readManifest(store, manifestUri);
    assert.equal(stored.dtype, 'float32');
    assert.deepEqual(stored.shape, [manifest.counts.train, 10]);
    assert.equal(first.bytes, (await store.read(first.uri)).byteLength);

    // The rows are the teacher's log-probabilities for the training images, in the split's order.
    const teacher = await modelFromFiles(tf, await store.readDirectory(teacherUri));
    const train = await loadSplit(tf, store, manifest, 'train');
    const expected = tf.tidy(() => logitsOf(tf, teacher.predict(train.images.slice(0, 5)) as ReturnType<typeof tf.tensor2d>).dataSync());
    expected.forEach((value, i) => assert.ok(Math.abs(value - stored.data[i]!) < 1e-4, `logit ${i}: ${stored.data[i]} vs ${value}`));
    tf.dispose([train.images, train.labels]);
    teacher.dispose();

    // With the teacher gone, only a recorded result can answer.
    const second = await withoutTeacher(async () => (await run(teacherLogitsProbe, 'logits-again', teacherUri, manifestUri)).result());
    assert.deepEqual(second, first);
  });

  it('refuses, naming the field, a teacher outside the store and one whose outputs are not the classes of the dataset', { timeout: 120_000 }, async () => {
    const outside = await invalidInputOf((await run(teacherLogitsProbe, 'logits-outside', 'artifact://../etc/model', manifestUri)).result());
    assert.match(outside.message, /^modelUri: The artifact "artifact:\/\/..\/etc\/model" is outside/);
    const fourClasses = await saveModel(tf, artifactStore(), buildModel(tf, modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [4] }), { height: 28, width: 28, channels: 1 }, 4, 1));
    const mismatch = await invalidInputOf((await run(teacherLogitsProbe, 'logits-mismatch', fourClasses.uri, manifestUri)).result());
    assert.equal(mismatch.message, "modelUri: the teacher's output is [null,4]; the dataset has 10 classes");
  });

  it('distills a student from a trained CNN teacher well above chance', { timeout: 300_000 }, async () => {
    const student = await (await distill('distill')).result();
    const accuracy = await testAccuracy(student.uri);
    console.log(`distilled student: test accuracy ${accuracy}, ${student.details.parameters} parameters`);
    assert.equal(student.format, 'tfjs-layers');
    assert.ok(accuracy > 0.6, `test accuracy ${accuracy}`);
    assert.equal(student.details.temperature, 4);
    assert.equal(student.details.alpha, 0.9);
    assert.equal(student.details.distilled, true);
    assert.deepEqual(student.details.student, variant().student);
    assert.ok((student.details.teacherLogitsUri as string).endsWith('.npy'));
    assert.equal(student.details.parameters, 784 * 16 + 16 + 16 * 10 + 10);
  });

  it('learns from the teacher alone: with alpha 1 and the training labels shuffled the student still learns, and without distillation it does not', { timeout: 600_000 }, async () => {
    const shuffled = await withShuffledTrainingLabels(manifestUri);
    const fromTeacher = await (await distill('shuffled-distill', { manifestUri: shuffled, variant: variant({ alpha: 1 }) })).result();
    const fromLabels = await (await distill('shuffled-labels', { manifestUri: shuffled, variant: variant({ alpha: 1 }), withoutDistillation: true })).result();
    const [teacherTaught, labelTaught] = [await testAccuracy(fromTeacher.uri, shuffled), await testAccuracy(fromLabels.uri, shuffled)];
    console.log(`shuffled labels: distilled ${teacherTaught}, without distillation ${labelTaught}`);
    assert.ok(teacherTaught > 0.6, `distilled: ${teacherTaught}`);
    assert.ok(labelTaught < 0.3, `without distillation: ${labelTaught}`);
    assert.equal(fromLabels.details.distilled, false);
    assert.equal(fromLabels.details.parameters, fromTeacher.details.parameters, 'the same student');
  });

  it('resumes from its checkpoint after the training process is SIGKILLed, without computing the teacher logits again', { timeout: 600_000 }, async () => {
    await (await run(teacherLogitsProbe, 'logits-before-kill', teacherUri, manifestUri)).result();
    const student = await withoutTeacher(async () => {
      // Epochs to spare after the first heartbeated checkpoint on a fast machine.
      const handle = await distill('distill-kill', { variant: variant({ training: trainingSpecSchema.parse({ epochs: 10, batchSize: 8, checkpointEverySeconds: 1, earlyStopping: null }) }) });
      await waitFor('a heartbeated checkpoint', 120_000, async () => ((await distillHeartbeat(handle))?.checkpoint ? true : undefined));
      process.kill(await waitFor('the training process', 10_000, () => trainingChildOf(process.pid)), 'SIGKILL');
      const result = await handle.result();
      const history = (await handle.fetchHistory()).events ?? [];
      const started = history.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED);
      assert.deepEqual(
        started.map((e) => e.activityTaskStartedEventAttributes!.attempt),
        [1, 1],
        'teacherLogits and distillModel each ran once: the crash was restarted within the attempt',
      );
      return result;
    });
    assert.equal(student.details.resumes, 1);
    assert.equal(student.details.epochs, 10);
    assert.ok((await testAccuracy(student.uri)) > 0.6);
  });

  /** The distillModel activity's latest heartbeat. */
  async function distillHeartbeat(handle: WorkflowHandle): Promise<TrainProgress | undefined> {
    const description = await handle.describe();
    const pending = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'distillModel');
    if (!pending?.heartbeatDetails?.payloads?.length) return undefined;
    return decodeFromPayloadsAtIndex<TrainProgress>(env.client.options.loadedDataConverter, 0, pending.heartbeatDetails.payloads);
  }
});

/** The same dataset with its training labels permuted: only the validation and test labels still match the images. */
async function withShuffledTrainingLabels(manifestUri: string): Promise<string> {
  const store = artifactStore();
  const manifest = await readManifest(store, manifestUri);
  const shards = await Promise.all(
    manifest.shards.map(async (shard) => {
      if (shard.split !== 'train') return shard;
      const labels = decodeNpy(await store.read(shard.labelsUri)).data as Int32Array;
      const order = seededPermutation(labels.length, 7);
      const shuffled = Int32Array.from(order, (i) => labels[i]!);
      return { ...shard, labelsUri: (await store.putBlob(encodeNpy({ dtype: 'int32', shape: [labels.length], data: shuffled }), '.npy')).uri };
    }),
  );
  return (await store.putBlob(Buffer.from(JSON.stringify({ ...manifest, shards })), '.json')).uri;
}
