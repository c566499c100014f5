import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { listDataset, preprocessBatch, type DatasetListing } from '../activities/preprocessing';
import { LocalArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { preprocessDatasetInputSchema, type PreprocessDatasetInput } from '../lib/schemas/preprocess-dataset';
import { preprocessDataset } from '../workflows';
import { distinctImage, pixelBomb } from './helpers/messy-dataset';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';
import { invalidInputOf } from './helpers/failures';

/** This worker's ceilings, far below the defaults so that small files reach them. */
const CEILINGS = {
  TEMPORAL_ML_MAX_INPUT_PIXELS: '1000000',
  TEMPORAL_ML_MAX_FILE_BYTES: '200000',
  TEMPORAL_ML_MAX_BATCH_TENSOR_BYTES: String(28 * 28 * 4 * 50),
  TEMPORAL_ML_MAX_IDX_BYTES: '100000',
  TEMPORAL_ML_MAX_AUGMENTATION_COPIES: '2',
};

describe('preprocessDataset within the worker limits', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let store: LocalArtifactStore;
  let datasets: string;

  before(async () => {
    const dataDir = temporaryDataDir();
    Object.assign(process.env, CEILINGS, { TEMPORAL_ML_DATA_DIR: dataDir });
    datasets = join(dataDir, 'datasets');
    store = new LocalArtifactStore(join(dataDir, 'artifacts'));
    const folder = join(datasets, 'limits');
    for (const name of ['a', 'b']) mkdirSync(join(folder, name), { recursive: true });
    for (let i = 0; i < 6; i++) await distinctImage(100 + i).png().toFile(join(folder, i % 2 ? 'a' : 'b', `${i}.png`));
    writeFileSync(join(folder, 'a', 'bomb.png'), await pixelBomb(1100, 1000));
    writeFileSync(join(folder, 'b', 'big.png'), Buffer.concat([await distinctImage(7).png().toBuffer(), Buffer.alloc(200_001)]));
    env = await startTemporal();
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
  });

  after(async () => {
    await workers.shutdown();
    await env.teardown();
  });

  const run = (input: PreprocessDatasetInput) =>
    env.client.workflow.execute(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `limits-${Math.random().toString(36).slice(2)}`, args: [input] });

  const failure = (input: PreprocessDatasetInput) => invalidInputOf(run(input));

  it('applies the ceilings to an input that leaves the limits out', async () => {
    const result = await run({ dataset: { source: 'limits' } });
    const manifest = await store.readJson<DatasetManifest>(result.manifestUri);
    const reported = Object.fromEntries(manifest.leftOut.map((f) => [f.path, f.reason]));
    assert.deepEqual(reported, { 'a/bomb.png': 'too_large', 'b/big.png': 'too_large' });
    assert.equal(result.images.kept, 6);
  });

  it('lets an input lower a ceiling', async () => {
    // Three of the six images are over 400 pixels (distinctImage sizes them 20-26 x 16-20).
    const result = await run({ dataset: { source: 'limits' }, preprocess: { maxInputPixels: 400 } });
    assert.equal(result.images.kept, 3);
    assert.equal(result.leftOutByReason.too_large, 5);
  });

  it('refuses an input over a ceiling at once, naming the field and the ceiling', async () => {
    const cases: [PreprocessDatasetInput, RegExp][] = [
      [{ preprocess: { maxInputPixels: 1_000_001 } }, /preprocess\.maxInputPixels: 1000001 is over this worker's ceiling of 1000000 \(TEMPORAL_ML_MAX_INPUT_PIXELS\)/],
      [{ preprocess: { maxFileBytes: 300_000 } }, /preprocess\.maxFileBytes: 300000 is over this worker's ceiling of 200000 \(TEMPORAL_ML_MAX_FILE_BYTES\)/],
      [{ preprocess: { augmentation: { copies: 3 } } }, /preprocess\.augmentation\.copies: 3 is over this worker's ceiling of 2 \(TEMPORAL_ML_MAX_AUGMENTATION_COPIES\)/],
      [{ batching: { size: 201 } }, /batching\.size: 201 images take .* over this worker's ceiling of 156800 \(TEMPORAL_ML_MAX_BATCH_TENSOR_BYTES\)/],
    ];
    for (const [input, message] of cases) assert.match((await failure({ dataset: { source: 'limits' }, ...input })).message, message);
  });

  it('checks the ceilings again in each batch, on the worker that runs it', async () => {
    // As if another worker, with higher ceilings, had listed the dataset for this input.
    const config = preprocessDatasetInputSchema.parse({ dataset: { source: 'limits' } });
    const activity = new MockActivityEnvironment();
    const listing = (await activity.run(listDataset, { dataset: config.dataset, spec: config.preprocess, batching: config.batching })) as DatasetListing;
    const error = await activity.run(preprocessBatch, { listingUri: listing.listingUri, batch: 0, spec: { ...config.preprocess, maxFileBytes: 200_001 } }).then(
      () => assert.fail('the batch should have been refused'),
      (err: unknown) => err,
    );
    assert.ok(error instanceof ApplicationFailure);
    assert.equal(error.nonRetryable, true);
    assert.match(error.message, /^preprocess\.maxFileBytes: 200001 is over this worker's ceiling of 200000 \(TEMPORAL_ML_MAX_FILE_BYTES\)/);
  });

  describe('reads IDX files as it reads images', { timeout: 120_000 }, () => {
    const labels = () => {
      writeFileSync(join(datasets, 'idx-labels'), Buffer.from([0, 0, 8, 1, 0, 0, 0, 1, 0]));
      return 'idx-labels';
    };

    it('refuses a link to /dev/zero named as an IDX file, promptly', async () => {
      symlinkSync('/dev/zero', join(datasets, 'zero-images'));
      const message = (await failure({ dataset: { source: { format: 'idx', images: ['zero-images'], labels: [labels()] } } })).message;
      assert.match(message, /^dataset\.source\.images: zero-images: links to \/dev\/zero, outside the dataset root/);
    });

    it('refuses a FIFO named as an IDX file without blocking on it', async () => {
      execFileSync('mkfifo', [join(datasets, 'fifo-images')]);
      const message = (await failure({ dataset: { source: { format: 'idx', images: ['fifo-images'], labels: [labels()] } } })).message;
      assert.match(message, /^dataset\.source\.images: fifo-images: is not a regular file/);
    });

    it('refuses an IDX file that decompresses past the ceiling', async () => {
      const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, 200, 0, 0, 0, 28, 0, 0, 0, 28]);
      writeFileSync(join(datasets, 'bomb-images.gz'), gzipSync(Buffer.concat([header, Buffer.alloc(200 * 28 * 28)])));
      const message = (await failure({ dataset: { source: { format: 'idx', images: ['bomb-images.gz'], labels: [labels()] } } })).message;
      assert.match(message, /^dataset\.source\.images: bomb-images\.gz: decompresses to more than 100000 bytes \(this worker's ceiling for IDX files, TEMPORAL_ML_MAX_IDX_BYTES\)/);
    });
  });
});
