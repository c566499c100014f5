import { WithStartWorkflowOperation, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { registryWorkflowId, type NewModelVersion } from '../lib/registry';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { championQuery, mlPipeline, modelRegistry, promoteUpdate, registerVersionUpdate, registryStateQuery, rollbackUpdate, versionsQuery } from '../workflows';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';

const MODEL = 'registry-digits';
/** 600 digits, a small MLP, one epoch, no compression: a pipeline in seconds. */
const pipelineInput = (training: Record<string, unknown> = {}) => ({
  modelName: MODEL,
  dataset: { maxImages: 600 },
  model: { architecture: 'mlp' as const, hiddenUnits: [32], dropout: 0 },
  training: { epochs: 1, ...training },
  compression: null,
});

const runCli = promisify(execFile);

/** The names of the updates a registry's history accepted, in order: a rejected update is not among them. */
async function acceptedUpdates(handle: WorkflowHandle): Promise<string[]> {
  const { events } = await handle.fetchHistory();
  return events!.flatMap((e) => (e.workflowExecutionUpdateAcceptedEventAttributes ? [e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest!.input!.name!] : []));
}

async function rejectionOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => assert.fail('the update should be rejected'),
    (err: unknown) => err,
  );
  assert.ok(error instanceof WorkflowUpdateFailedError, `got ${String(error)}`);
  return error.cause?.message ?? '';
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('modelRegistry through Temporal', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let cli: (...args: string[]) => Promise<string>;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    env = await startTemporal();
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu', 'ml-train']);
    const main = join(__dirname, '..', 'cli', 'main.js');
    cli = async (...args) => (await runCli(process.execPath, [main, 'registry', ...args], { env: { ...process.env, TEMPORAL_ADDRESS: env.address } })).stdout;
  });

  after(async () => {
    await workers?.shutdown();
    await env?.teardown();
  });

  it('pipelines register versions, the first becomes champion, a worse one is not promoted, and the CLI forces and rolls back', { timeout: 300_000 }, async () => {
    const first = await env.client.workflow.execute(mlPipeline, { taskQueue: 'ml-pipeline', workflowId: `registry-e2e-first-${Date.now()}`, args: [pipelineInput()] });
    assert.ok(first.status === 'trained');
    assert.equal(first.registry.version, 1);
    assert.equal(first.registry.promoted, true);
    assert.equal(first.registry.champion, 1);
    assert.match(first.registry.reason, /version 1 is the first champion/);

    // A learning rate that leaves the weights where they started: a challenger near chance on the same test split.
    const secondId = `registry-e2e-second-${Date.now()}`;
    const second = await env.client.workflow.execute(mlPipeline, { taskQueue: 'ml-pipeline', workflowId: secondId, args: [pipelineInput({ learningRate: 1e-7 })] });
    assert.ok(second.status === 'trained');
    assert.ok(second.testAccuracy < first.testAccuracy, `${second.testAccuracy} should be below ${first.testAccuracy}`);
    assert.deepEqual({ ...second.registry, reason: '' }, { version: 2, promoted: false, champion: 1, reason: '' });
    assert.match(second.registry.reason, /version 2's test accuracy .* does not beat champion version 1's/);

    const registry = env.client.workflow.getHandle(registryWorkflowId(MODEL));
    const versions = await registry.query(versionsQuery);
    assert.deepEqual(versions.map((v) => [v.version, v.modelUri, v.evaluation.testAccuracy]), [[1, first.modelUri, first.testAccuracy], [2, second.modelUri, second.testAccuracy]]);
    const [v1, v2] = versions.map((v) => v.lineage);
    assert.equal(v2!.workflowId, secondId);
    assert.equal(v1!.manifestUri, first.manifestUri);
    assert.equal(v1!.datasetFingerprint, v2!.datasetFingerprint);
    assert.equal(v1!.testSplitFingerprint, v2!.testSplitFingerprint);
    assert.notEqual(v1!.configFingerprint, v2!.configFingerprint);
    assert.equal(v2!.training.learningRate, 1e-7);
    assert.equal((await registry.query(championQuery))?.version, 1);
    // The second pipeline's promotion was rejected by the validator: nothing of it is in the registry's history.
    assert.deepEqual(await acceptedUpdates(registry), ['registerVersion', 'promote', 'registerVersion']);
    const { typedSearchAttributes } = await registry.describe();
    assert.equal(typedSearchAttributes.getAll().find((pair) => pair.key.name === 'MlModel')?.value, MODEL);

    await assert.rejects(cli('promote', MODEL, '2', '--force'), /reason: required with force/);
    assert.match(await cli('promote', MODEL, '2', '--force', '--reason', 'the canary prefers it'), /champion is version 2: the canary prefers it/);
    assert.match(await cli('rollback', MODEL, '--reason', 'the canary was wrong'), /champion is version 1: the canary was wrong/);
    const { promotions, champion } = await registry.query(registryStateQuery);
    assert.equal(champion, 1);
    assert.deepEqual(promotions.map(({ version, previous, kind, reason }) => ({ version, previous, kind, reason })).slice(1), [
      { version: 2, previous: 1, kind: 'force', reason: 'the canary prefers it' },
      { version: 1, previous: 2, kind: 'rollback', reason: 'the canary was wrong' },
    ]);

    const shown = await cli('show', MODEL);
    assert.match(shown, /registry-digits: 2 version\(s\), champion version 1/);
    assert.match(shown, new RegExp(`\\| 1 \\| ✓ \\| ${(first.testAccuracy * 100).toFixed(2)}% \\|`));
    assert.match(shown, /\| 2 \| {2}\| /);
    assert.match(shown, /force to version 2 \(from 1\): the canary prefers it/);
    await waitFor('registry list shows the registry', async () => (await cli('list')).includes(`| ${MODEL} | 2 | 1 |`));
  });

  it('a rejected update leaves no event in the history', async () => {
    const registry = env.client.workflow.getHandle(registryWorkflowId(MODEL));
    const before = (await registry.fetchHistory()).events!.length;
    assert.match(await rejectionOf(registry.executeUpdate(promoteUpdate, { args: [{ version: 2 }] })), /does not beat champion version 1/);
    assert.match(await rejectionOf(registry.executeUpdate(promoteUpdate, { args: [{ version: 9 }] })), /has no version 9/);
    assert.match(await rejectionOf(registry.executeUpdate(promoteUpdate, { args: [{ version: 2, force: true }] })), /reason: required with force/);
    assert.equal((await registry.fetchHistory()).events!.length, before);
  });

  it('continues as new after its updates per run, and the state survives', async () => {
    const modelName = 'registry-continue';
    const workflowId = registryWorkflowId(modelName);
    const start = () =>
      new WithStartWorkflowOperation(modelRegistry, { workflowId, taskQueue: 'ml-pipeline', args: [{ modelName, updatesPerRun: 2 }], workflowIdConflictPolicy: 'USE_EXISTING' });
    const version = (run: string, testAccuracy: number, testSplitFingerprint = 'split'): NewModelVersion => ({
      modelUri: `artifact://models/${run}`,
      lineage: {
        datasetFingerprint: 'data',
        manifestUri: 'artifact://manifest.json',
        testSplitFingerprint,
        configFingerprint: 'config',
        model: modelSpecSchema.parse({ architecture: 'mlp' }),
        training: trainingSpecSchema.parse({}),
        distributed: null,
        workflowId: run,
        runId: run,
      },
      evaluation: { testAccuracy, testLoss: 1, reportUri: `artifact://reports/${run}.json` },
      compressed: [],
    });
    await env.client.workflow.executeUpdateWithStart(registerVersionUpdate, { args: [version('a', 0.5)], startWorkflowOperation: start() });
    const handle = env.client.workflow.getHandle(workflowId);
    const firstRunId = (await handle.describe()).runId;
    await handle.executeUpdate(promoteUpdate, { args: [{ version: 1 }] });
    await waitFor('the registry continues as new', async () => (await handle.describe()).runId !== firstRunId);

    // The new run holds what the first one had, and registering the same run again returns its version.
    const again = await env.client.workflow.executeUpdateWithStart(registerVersionUpdate, { args: [version('a', 0.5)], startWorkflowOperation: start() });
    assert.equal(again.version, 1);
    await handle.executeUpdate(registerVersionUpdate, { args: [version('b', 0.6)] });
    assert.equal((await handle.executeUpdate(promoteUpdate, { args: [{ version: 2 }] })).champion, 2);
    const state = await handle.query(registryStateQuery);
    assert.deepEqual(state.versions.map((v) => v.modelUri), ['artifact://models/a', 'artifact://models/b']);
    assert.deepEqual(state.promotions.map((p) => [p.version, p.previous, p.kind]), [[1, null, 'promote'], [2, 1, 'promote']]);
    assert.equal((await handle.executeUpdate(rollbackUpdate, { args: [{}] })).champion, 1);
  });
});
