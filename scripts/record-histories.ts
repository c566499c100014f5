/**
 * `npm run record:histories`: runs every workflow once on a tiny input against a fresh Temporal dev server and workers
 * in this process, and writes each run's event history to test/fixtures/histories/<name>.json (the workflow type, and the variant where one
 * workflow is recorded in several), the format
 * `temporal workflow show --output json` writes and `Worker.runReplayHistory` reads. test/replay.test.ts replays them.
 *
 * Re-record only when no run of the recorded code can still be open: see "Changing workflow code safely" in the README.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HISTORIES_DIR, historyToJson, recordedWorkflowId, recordingName } from './histories';
import { runWorkersInProcess, startTemporal } from '../workers/in-process';
import { registryWorkflowId } from '../lib/registry';
import { compressModel, distributedTrain, hyperparameterSweep, mlPipeline, preprocessDataset, trainModel } from '../workflows';

const TINY_MODEL = { architecture: 'mlp' as const, hiddenUnits: [16] };
const TINY_TRAINING = { epochs: 1, batchSize: 32 };
/** 120 built-in digits in two batches: the fan-out, the cache and every split, in a few seconds. */
const TINY_DATASET = { dataset: { maxImages: 120 }, batching: { size: 60 } };

async function main(): Promise<void> {
  const started = performance.now();
  // Artifacts go to a scratch folder; the built-in digits stay where the worker keeps them, written once per checkout.
  const artifactRoot = mkdtempSync(join(tmpdir(), 'temporal-ml-record-'));
  process.env.TEMPORAL_ML_ARTIFACT_ROOT = artifactRoot;
  const env = await startTemporal();
  const workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu', 'ml-train']);
  const options = (name: string) => ({ taskQueue: 'ml-pipeline', workflowId: recordedWorkflowId(name), workflowExecutionTimeout: '5 minutes' });
  try {
    const preprocess = await env.client.workflow.start(preprocessDataset, { ...options('preprocessDataset'), args: [TINY_DATASET] });
    const { manifestUri } = await preprocess.result();
    const others = await Promise.all([
      env.client.workflow.start(mlPipeline, { ...options('mlPipeline'), args: [{ ...TINY_DATASET, model: TINY_MODEL, training: TINY_TRAINING }] }),
      env.client.workflow.start(trainModel, { ...options('trainModel'), args: [{ manifestUri, model: TINY_MODEL, training: TINY_TRAINING }] }),
      env.client.workflow.start(hyperparameterSweep, {
        ...options('hyperparameterSweep'),
        args: [{ manifestUri, base: { model: TINY_MODEL, training: TINY_TRAINING }, space: { 'training.learningRate': [0.01, 0.001] }, parallelism: 2 }],
      }),
      // Two trials to 1 epoch, the better one promoted and resumed to 2.
      env.client.workflow.start(hyperparameterSweep, {
        ...options('hyperparameterSweep-asha'),
        args: [
          {
            manifestUri,
            base: { model: TINY_MODEL, training: { batchSize: TINY_TRAINING.batchSize } },
            space: { 'training.learningRate': [0.01, 0.001] },
            search: 'asha',
            asha: { maxEpochs: 2, gracePeriod: 1, reductionFactor: 2 },
            parallelism: 2,
          },
        ],
      }),
      ...(['sync', 'async'] as const).map((mode) =>
        env.client.workflow.start(distributedTrain, {
          ...options(`distributedTrain-${mode}`),
          args: [{ manifestUri, model: TINY_MODEL, training: TINY_TRAINING, numWorkers: 2, rounds: 2, mode }],
        }),
      ),
    ]);
    await Promise.all(others.map((handle) => handle.result()));
    const { modelUri } = await others[1]!.result();
    const compress = await env.client.workflow.start(compressModel, {
      ...options('compressModel'),
      args: [{ modelUri, manifestUri, variants: [{ method: 'quantize', dtype: 'float16' }, { method: 'int8' }] }],
    });
    await compress.result();

    // The registry mlPipeline registered its model in (and promoted it), still running.
    const registry = env.client.workflow.getHandle(registryWorkflowId((await others[0]!.result()).modelName));

    mkdirSync(HISTORIES_DIR, { recursive: true });
    const recordings = [preprocess, ...others, compress].map((handle) => [recordingName(handle.workflowId), handle] as const);
    for (const [name, handle] of [...recordings, ['modelRegistry', registry] as const]) {
      const history = await handle.fetchHistory();
      const path = join(HISTORIES_DIR, `${name}.json`);
      writeFileSync(path, historyToJson(history));
      console.log(`${name}: ${history.events!.length} events -> ${path}`);
    }
    console.log(`Recorded ${recordings.length + 1} histories in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
  } finally {
    await workers.shutdown();
    await env.teardown();
    rmSync(artifactRoot, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
