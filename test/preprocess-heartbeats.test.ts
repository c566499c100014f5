import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { listDataset, preprocessBatch, writeManifest } from '../activities/preprocessing';
import { preprocessDatasetInputSchema } from '../lib/schemas/preprocess-dataset';
import { distinctImage } from './helpers/messy-dataset';
import { pngChunk } from './helpers/png';
import { temporaryDataDir } from './helpers/temporal';

/** `png` with a text chunk before its end: other bytes, so another image to the content-keyed cache, same pixels. */
function withTextChunk(png: Buffer, text: string): Buffer {
  const end = png.length - 12;
  return Buffer.concat([png.subarray(0, end), pngChunk('tEXt', Buffer.from(`Comment\0${text}`)), png.subarray(end)]);
}

/**
 * Heartbeat cadence of the preprocessing activities, in the SDK's own activity context: it records every heartbeat
 * and delivers cancellation the way a worker does once a heartbeat has told the server the activity is alive.
 */
describe('preprocessing activities heartbeat as their work progresses', () => {
  let datasets: string;

  before(() => {
    const dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    datasets = join(dataDir, 'datasets');
  });

  const config = (source: string, size: number) => {
    const { dataset, preprocess: spec, batching } = preprocessDatasetInputSchema.parse({ dataset: { source }, batching: { size } });
    return { dataset, spec, batching };
  };

  async function run<P extends unknown[], R>(fn: (...args: P) => Promise<R>, ...args: P): Promise<{ result: R; heartbeats: unknown[] }> {
    const environment = new MockActivityEnvironment();
    const heartbeats: unknown[] = [];
    environment.on('heartbeat', (details: unknown) => heartbeats.push(details));
    return { result: (await environment.run(fn, ...args)) as R, heartbeats };
  }

  it('listDataset heartbeats while it walks a folder', async () => {
    const perFolder = 600;
    for (const name of ['a', 'b/nested', 'c']) {
      mkdirSync(join(datasets, 'many', name), { recursive: true });
      for (let i = 0; i < perFolder; i++) writeFileSync(join(datasets, 'many', name, `${i}.png`), '');
    }
    const { result, heartbeats } = await run(listDataset, config('many', 100));
    assert.equal(result.count, 3 * perFolder);
    // 1,801 entries walked (the nested folder counts): one heartbeat per 1,000, or per second on a slow disk.
    const walked = heartbeats.map((h) => (h as { entries: number }).entries);
    assert.ok(walked.length >= 1, 'no heartbeat during the walk');
    assert.ok(walked[0]! < 3 * perFolder + 1, `the first heartbeat came after the walk: ${JSON.stringify(walked)}`);
  });

  it('writeManifest heartbeats as it reads the batch outputs', async () => {
    mkdirSync(join(datasets, 'small', 'x'), { recursive: true });
    for (let i = 0; i < 30; i++) await distinctImage(i).png().toFile(join(datasets, 'small', 'x', `${i}.png`));
    const { dataset, spec, batching } = config('small', 1);
    const { result: listing } = await run(listDataset, { dataset, spec, batching });
    for (let batch = 0; batch < listing.batches; batch++) await run(preprocessBatch, { listingUri: listing.listingUri, batch, spec });
    const { result, heartbeats } = await run(writeManifest, { listingUri: listing.listingUri, spec });
    assert.equal(result.images.kept, 30);
    // One heartbeat per 10 outputs read, then per 10 joined, or per second when that is slow.
    const steps = heartbeats.map((h) => h as { batchesRead: number; batchesJoined: number });
    assert.ok(steps.length >= 6, JSON.stringify(steps));
    assert.ok(steps.some((step) => step.batchesJoined > 0), `no heartbeat while joining: ${JSON.stringify(steps)}`);
    const done = steps.map((step) => step.batchesRead + step.batchesJoined);
    assert.ok(done.every((n, i) => n > (done[i - 1] ?? 0) && n <= 60), JSON.stringify(steps));
  });

  it('preprocessBatch heartbeats every 1,000 images while it reads a large batch, not every 1,000 chunks read', async () => {
    const files = 2500;
    mkdirSync(join(datasets, 'many-small', 'x'), { recursive: true });
    const png = await distinctImage(0).png().toBuffer();
    for (let i = 0; i < files; i++) writeFileSync(join(datasets, 'many-small', 'x', `${i}.png`), png);
    const { dataset, spec, batching } = config('many-small', files);
    const { result: listing } = await run(listDataset, { dataset, spec, batching });
    const { result, heartbeats } = await run(preprocessBatch, { listingUri: listing.listingUri, batch: 0, spec });
    assert.equal(result.listed, files);
    // Read in chunks of 64 files: the first heartbeat comes with the chunk that reaches 1,000 images read.
    const read = heartbeats.map((h) => h as { phase: string; done: number }).filter((h) => h.phase === 'read');
    assert.ok(read.length >= 2, `${read.length} heartbeats while reading ${files} files: ${JSON.stringify(heartbeats)}`);
    assert.ok(read.every((h, i) => h.done < files && h.done > (read[i - 1]?.done ?? 0)), JSON.stringify(read));
  });

  it('preprocessBatch heartbeats a batch of a few slow images, and so hears of its cancellation', async () => {
    const images = 24;
    mkdirSync(join(datasets, 'slow', 'x'), { recursive: true });
    // 36-megapixel PNGs: each takes a noticeable time to decode, so the batch runs for seconds.
    const big = await sharp({ create: { width: 6000, height: 6000, channels: 3, background: '#456' } }).png({ progressive: true, compressionLevel: 1 }).toBuffer();
    for (let i = 0; i < images; i++) writeFileSync(join(datasets, 'slow', 'x', `${i}.png`), withTextChunk(big, String(i)));
    const { dataset, spec, batching } = config('slow', images);
    const { result: listing } = await run(listDataset, { dataset, spec, batching });

    const environment = new MockActivityEnvironment();
    const heartbeats: { phase: string; done: number }[] = [];
    environment.on('heartbeat', (details: { phase: string; done: number }) => {
      heartbeats.push(details);
      // A worker learns of a cancellation request in the server's answer to a heartbeat.
      environment.cancel();
    });
    const error = await environment.run(preprocessBatch, { listingUri: listing.listingUri, batch: 0, spec }).then(
      () => assert.fail(`the batch ran to its end; heartbeats: ${JSON.stringify(heartbeats)}`),
      (err: unknown) => err,
    );
    assert.ok(error instanceof CancelledFailure, `got ${error}`);
    assert.ok(heartbeats[0]!.done < images || heartbeats[0]!.phase === 'read', JSON.stringify(heartbeats));
  });
});
