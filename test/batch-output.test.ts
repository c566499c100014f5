import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listDataset, preprocessBatch, writeManifest } from '../activities/preprocessing';
import { artifactStore, LocalArtifactStore, useArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { decodeNpy } from '../lib/npy';
import { SPLITS } from '../lib/split';
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
    // The same dataset stored once, and twice: each image again right after it in its class (`7.png~` sorts between
    // `7.png` and `71.png`), so batches of 3 hold originals and copies of images in this batch and in earlier ones.
    for (let i = 0; i < 12; i++) {
      const image = await distinctImage(100 + i).png().toBuffer();
      for (const [source, names] of [['once', [`${i}.png`]], ['twice', [`${i}.png`, `${i}.png~`]]] as const) {
        mkdirSync(join(dataDir, 'datasets', source, i % 2 ? 'odd' : 'even'), { recursive: true });
        for (const name of names) writeFileSync(join(dataDir, 'datasets', source, i % 2 ? 'odd' : 'even', name), image);
      }
    }
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

  it('drop every image whose content an earlier batch holds, however many: a dataset stored twice is the dataset stored once', async () => {
    const store = artifactStore();
    const manifestOf = async (source: string) => {
      const input = preprocessDatasetInputSchema.parse({ dataset: { source }, preprocess: { width: 8, height: 8, channels: 3, augmentation: { copies: 1 } }, batching: { size: 3 } });
      const listing = await run(listDataset, { dataset: input.dataset, spec: input.preprocess, batching: input.batching });
      for (let batch = 0; batch < listing.batches; batch++) await run(preprocessBatch, { listingUri: listing.listingUri, batch, spec: input.preprocess });
      const { manifestUri } = await run(writeManifest, { listingUri: listing.listingUri, spec: input.preprocess });
      return store.readJson<DatasetManifest>(manifestUri);
    };
    /** Each split's rows, pixels and labels, in manifest order. */
    const rowsOf = async (manifest: DatasetManifest) =>
      Promise.all(
        SPLITS.map(async (split) => {
          const shards = manifest.shards.filter((shard) => shard.split === split);
          const pixels = await Promise.all(shards.map(async (shard) => Buffer.from(decodeNpy(await store.read(shard.imagesUri)).data.buffer)));
          const labels = await Promise.all(shards.map(async (shard) => [...decodeNpy(await store.read(shard.labelsUri)).data]));
          return { split, pixels: Buffer.concat(pixels).toString('base64'), labels: labels.flat() };
        }),
      );
    const once = await manifestOf('once');
    const twice = await manifestOf('twice');
    assert.equal(twice.images.listed, 24);
    const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : 1);
    const copies = Array.from({ length: 12 }, (_, i) => `${i % 2 ? 'odd' : 'even'}/${i}.png`).map((original) => ({
      path: `${original}~`,
      reason: 'duplicate',
      detail: `same content as ${original}`,
    }));
    assert.deepEqual([...twice.leftOut].sort(byPath), copies.sort(byPath));
    assert.deepEqual(twice.leftOutByReason, { duplicate: 12 });
    const kept = ({ fingerprint, imagesIndexUri, counts, countsPerClass, decoders, images: { kept, augmentedCopies } }: DatasetManifest) =>
      ({ fingerprint, imagesIndexUri, counts, countsPerClass, decoders, kept, augmentedCopies });
    assert.deepEqual(kept(twice), kept(once), 'the same fingerprint, index and counts');
    assert.equal(twice.images.augmentedCopies, twice.counts.train / 2);
    assert.deepEqual(await rowsOf(twice), await rowsOf(once), 'the same rows in each split, in the same order');
  });
});
