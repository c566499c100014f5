import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listDataset, preprocessBatch, writeManifest } from '../activities/preprocessing';
import { LocalArtifactStore, useArtifactStore } from '../lib/artifacts';
import type { BatchOutput } from '../lib/preprocessing/batch-output';
import { preprocessDatasetInputSchema } from '../lib/schemas/preprocess-dataset';
import { distinctImage } from './helpers/messy-dataset';
import { temporaryDataDir } from './helpers/temporal';

/** Every file under `dir`, recursively. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)]));

describe('batch outputs', () => {
  let artifacts: string;

  before(async () => {
    const dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    artifacts = join(dataDir, 'store');
    useArtifactStore(new LocalArtifactStore(artifacts));
    // Two classes of 6 distinct images, then copies of two of them in a later batch, one under the other class.
    for (let i = 0; i < 12; i++) {
      mkdirSync(join(dataDir, 'datasets', 'set', i < 6 ? 'a' : 'b'), { recursive: true });
      await distinctImage(i).png().toFile(join(dataDir, 'datasets', 'set', i < 6 ? 'a' : 'b', `${i}.png`));
    }
    writeFileSync(join(dataDir, 'datasets', 'set', 'b', 'z-copy-of-0.png'), readFileSync(join(dataDir, 'datasets', 'set', 'a', '0.png')));
    writeFileSync(join(dataDir, 'datasets', 'set', 'b', 'z-copy-of-6.png'), readFileSync(join(dataDir, 'datasets', 'set', 'b', '6.png')));
  });
  after(() => useArtifactStore(undefined));

  const { dataset, preprocess: spec, batching } = preprocessDatasetInputSchema.parse({
    dataset: { source: 'set' },
    preprocess: { width: 8, height: 8, channels: 3, augmentation: { copies: 1 } },
    batching: { size: 4 },
  });
  const activity = new MockActivityEnvironment();
  const run = <P extends unknown[], R>(fn: (...args: P) => Promise<R>, ...args: P) => activity.run(fn, ...args) as Promise<R>;

  it('written with their images inline, as before the index moved out, are reused and give the same manifest', async () => {
    const listing = await run(listDataset, { dataset, spec, batching });
    const batches = Array.from({ length: listing.batches }, (_, batch) => batch);
    for (const batch of batches) await run(preprocessBatch, { listingUri: listing.listingUri, batch, spec });
    const current = await run(writeManifest, { listingUri: listing.listingUri, spec });
    assert.deepEqual(current.leftOutByReason, { duplicate: 2 });
    assert.equal(current.images.kept, 12);

    const entries = filesUnder(join(artifacts, 'cache', 'preprocess'));
    assert.equal(entries.length, listing.batches);
    for (const entry of entries) {
      const { key, index, shards, leftOut } = JSON.parse(readFileSync(entry, 'utf8')) as BatchOutput;
      const images = index.map(([path, sha256, split, label, decoder]) => ({ path, sha256, label, split, decoder }));
      writeFileSync(entry, JSON.stringify({ key, images, shards, leftOut }));
    }

    const inline = await run(writeManifest, { listingUri: listing.listingUri, spec });
    assert.equal(inline.manifestUri, current.manifestUri, 'the same manifest, byte for byte');
    const reruns = await Promise.all(batches.map((batch) => run(preprocessBatch, { listingUri: listing.listingUri, batch, spec })));
    assert.ok(reruns.every((run) => run.cacheHit), 'every batch reused its inline output');
    assert.equal(reruns.reduce((sum, run) => sum + run.kept, 0), 14, 'each batch keeps its own copy; the manifest drops those of earlier batches');
  });
});
