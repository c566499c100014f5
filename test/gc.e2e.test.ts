import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { LocalArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import type { PreprocessDatasetInput } from '../lib/schemas/preprocess-dataset';
import { emptyRegistry, type ModelVersion } from '../lib/registry';
import { modelRegistry, preprocessDataset, trainModel } from '../workflows';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';
import { waitFor } from './helpers/wait';

const execFileAsync = promisify(execFile);
const DAY = 86_400_000;

/** Every file and folder under the store with its modification time, to show a dry run changes nothing. */
function snapshot(root: string): string[] {
  return readdirSync(root, { recursive: true }).map((name) => `${name} ${statSync(join(root, String(name))).mtimeMs}`).sort();
}

/** Dates everything under `root` back by `days`, as if written then. */
function ageAll(root: string, days: number): void {
  const when = new Date(Date.now() - days * DAY);
  for (const name of readdirSync(root, { recursive: true })) utimesSync(join(root, String(name)), when, when);
}

/** A registered version whose only artifact that matters here is its model. */
function registeredVersion(modelUri: string): ModelVersion {
  const lineage = { datasetFingerprint: 'd', manifestUri: 'none', testSplitFingerprint: 't', configFingerprint: 'c', workflowId: 'w', runId: 'r', distributed: null };
  return {
    version: 1,
    modelUri,
    lineage: { ...lineage, model: {}, training: {} } as ModelVersion['lineage'],
    evaluation: { testAccuracy: 0.9, testLoss: 0.3, reportUri: 'none' },
    compressed: [],
    registeredAt: new Date(0).toISOString(),
  };
}

describe('gc through Temporal, with encrypted payloads', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let store: LocalArtifactStore;
  let gc: (...args: string[]) => Promise<string>;

  before(async () => {
    const dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    store = new LocalArtifactStore(join(dataDir, 'artifacts'));
    // Payloads encrypted: gc reads the references in histories through the codec, as every client does.
    const keyFile = join(dataDir, 'keys.json');
    writeFileSync(keyFile, JSON.stringify([{ id: 'gc-key', key: randomBytes(32).toString('base64') }]));
    process.env.TEMPORAL_ML_ENCRYPTION_KEY_FILE = keyFile;
    env = await startTemporal();
    // No ml-train worker: a trainModel run stays open, waiting for its training activity, while gc runs.
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
    const main = join(__dirname, '..', 'cli', 'main.js');
    gc = async (...args) => (await execFileAsync(process.execPath, [main, 'gc', ...args], { env: { ...process.env, TEMPORAL_ADDRESS: env.address } })).stdout;
  });

  after(async () => {
    await workers?.shutdown();
    await env?.teardown();
  });

  const input: PreprocessDatasetInput = {
    dataset: { source: 'builtin:mnist-digits', maxImages: 300 },
    preprocess: { width: 8, height: 8, channels: 1 },
    batching: { size: 100 },
  };
  const preprocess = () => env.client.workflow.execute(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `gc-preprocess-${Date.now()}`, args: [input] });
  const keyOf = (uri: string) => relative(store.root, store.pathOf(uri));

  const startOf = (workflowId: string) =>
    waitFor(`${workflowId} to be listed`, 10_000, async () => {
      for await (const run of env.client.workflow.list({ query: `WorkflowId = '${workflowId}' AND ExecutionStatus = 'Running'` })) return run.startTime;
      return undefined;
    });

  async function shardsIntact(manifestUri: string): Promise<boolean> {
    const manifest = await store.readJson<DatasetManifest>(manifestUri);
    const blobs = [manifest.imagesIndexUri, ...manifest.shards.flatMap((s) => [s.imagesUri, s.labelsUri])];
    return (await Promise.all(blobs.map((uri) => store.isIntactBlob(uri)))).every(Boolean);
  }

  it('removes unreachable old artifacts and stale staging files, never what a kept result, an open run or a schedule reads', { timeout: 120_000 }, async () => {
    const openManifest = await writeSyntheticDataset(store, 8);
    const scheduledManifest = await writeSyntheticDataset(store, 12);
    const terminatedManifest = await writeSyntheticDataset(store, 16);
    const registeredModel = (await store.putDirectory({ 'model.json': Buffer.from('{"registered": true}'), 'weights.bin': Buffer.from('registered') })).uri;
    // Created first: the dev server's scheduler answers its first describe only once it has started.
    const schedule = await env.client.schedule.create({
      scheduleId: `gc-retrain-${Date.now()}`,
      spec: { intervals: [{ every: '1 day' }] },
      action: { type: 'startWorkflow', workflowType: trainModel, taskQueue: 'ml-pipeline', args: [{ manifestUri: scheduledManifest }] },
      state: { paused: true },
    });
    const kept = await preprocess();
    // A closed run keeps its input as well as its result.
    const terminated = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `gc-terminated-${Date.now()}`, args: [{ manifestUri: terminatedManifest }] });
    await terminated.terminate('closed before gc');
    const garbage = [
      (await store.putBlob(Buffer.from('unreachable'), '.npy')).uri,
      (await store.putDirectory({ 'model.json': Buffer.from('{}'), 'weights.bin': Buffer.from('weights') })).uri,
      await store.putNamed('distillation/teacher-logits/ab/unreachable.json', '{}'),
    ].map(keyOf);
    const scratch = await store.scratchFolder();
    writeFileSync(join(scratch, 'weights.bin'), 'half written');
    const halfWritten = `${store.pathOf(openManifest)}.tmp-4242-0a1b2c`;
    writeFileSync(halfWritten, 'half written');
    const staging = [scratch, halfWritten].map((path) => relative(store.root, path));
    ageAll(store.root, 30);
    const recentOrphan = keyOf((await store.putBlob(Buffer.from('recent but unreachable'), '.npy')).uri);

    // An idle open run, a registry holding a model: the model stays, but the registry's start does not hold gc back.
    const registry = await env.client.workflow.start(modelRegistry, {
      taskQueue: 'ml-pipeline',
      workflowId: `gc-registry-${Date.now()}`,
      args: [{ modelName: 'gc-test', state: { ...emptyRegistry('gc-test'), versions: [registeredVersion(registeredModel)], champion: 1 } }],
    });
    const registryStart = await startOf(registry.workflowId);
    const writtenWhileOnlyIdleRunsWereOpen = keyOf((await store.putBlob(Buffer.from('written while only the registry was open'), '.npy')).uri);
    utimesSync(store.pathOf(writtenWhileOnlyIdleRunsWereOpen), new Date(registryStart.getTime() + 1), new Date(registryStart.getTime() + 1));

    const open = await env.client.workflow.start(trainModel, { taskQueue: 'ml-pipeline', workflowId: `gc-open-train-${Date.now()}`, args: [{ manifestUri: openManifest }] });
    const openStart = await startOf(open.workflowId);
    await waitFor('the open run to wait for its training activity', 10_000, async () => ((await open.describe()).raw.pendingActivities?.length ? true : undefined));
    // Unreachable, but written after the open run started: that run may be writing it.
    const writtenDuringOpenRun = keyOf((await store.putBlob(Buffer.from('written while a run is open'), '.npy')).uri);
    utimesSync(store.pathOf(writtenDuringOpenRun), new Date(openStart.getTime() + 1), new Date(openStart.getTime() + 1));

    try {
      const before = snapshot(store.root);
      const dryRun = await gc('--dry-run');
      assert.deepEqual(snapshot(store.root), before, 'a dry run removes nothing');
      const planned = [...dryRun.matchAll(/^would remove (\S+) (\d+) bytes/gm)].map((m) => m[1]!);
      const leftFromKeptRun = planned.filter((key) => !garbage.includes(key) && !staging.includes(key));
      assert.equal(leftFromKeptRun.length, 1, `only the kept run's listing is left to remove besides garbage and staging:\n${dryRun}`);
      assert.match(leftFromKeptRun[0]!, /^sha256\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
      assert.deepEqual(planned.sort(), [...garbage, ...staging, ...leftFromKeptRun].sort());
      assert.match(dryRun, /Dry run: would remove 6 artifact\(s\), \d+ bytes/);

      // Older than one second: the recent orphans go too, but what changed since the busy open run started stays.
      await waitFor('a second to pass since the registry started', 5_000, () => (Date.now() > registryStart.getTime() + 1_500 ? true : undefined));
      const real = await gc('--older-than', '1s');
      assert.match(real, /Removed 8 artifact\(s\)/, real);
      for (const key of [...garbage, ...staging, ...leftFromKeptRun, recentOrphan, writtenWhileOnlyIdleRunsWereOpen]) assert.equal(existsSync(join(store.root, key)), false, key);
      assert.deepEqual(Object.keys(await store.readDirectory(registeredModel)).sort(), ['model.json', 'weights.bin'], 'the registry\'s model is there');
      assert.ok(existsSync(join(store.root, writtenDuringOpenRun)));
      assert.ok(await shardsIntact(kept.manifestUri), 'the kept result is readable');
      assert.ok(await shardsIntact(openManifest), 'what the open run reads is there');
      assert.ok(await shardsIntact(scheduledManifest), 'what a schedule will start runs on is there');
      assert.ok(await shardsIntact(terminatedManifest), 'the input of a closed run is there');

      const again = await preprocess();
      assert.equal(again.manifestUri, kept.manifestUri);
      assert.deepEqual(again.cache, { hit: true, batchesReused: again.batches });
    } finally {
      await open.terminate('gc test done');
      await registry.terminate('gc test done');
      await schedule.delete();
    }
  });
});
