import type { Scalar } from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { artifactStore } from '../lib/artifacts';
import { settings } from '../lib/config';
import { readManifest } from '../lib/datasets/manifest';
import { ShardRowReader } from '../lib/datasets/shard-rows';
import { shardOfRow } from '../lib/datasets/shard-of-row';
import { loadSplit, loadSplitArrays, splitShards } from '../lib/datasets/shards';
import { buildModel } from '../lib/models';
import { seededPermutation } from '../lib/random';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { batchesOf, epochOrder } from '../lib/training/batch-order';
import { openSplitFeed, scoreFeed } from '../lib/training/split-feed';
import { trainJob, type TrainJobInput, type TrainJobResult } from '../lib/training/train-job';
import { preprocessDigits } from './helpers/digits';
import { orNothing } from './helpers/disk-usage';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { temporaryDataDir } from './helpers/temporal';

const { tf } = tensorflow();

/** Histories of two runs agree epoch for epoch (seconds aside) within `tolerance`. */
function assertSameHistory(a: TrainJobResult, b: TrainJobResult, tolerance = 1e-5): void {
  assert.equal(a.history.length, b.history.length);
  a.history.forEach((epoch, i) => {
    for (const key of ['loss', 'accuracy', 'validationLoss', 'validationAccuracy'] as const) {
      assert.ok(Math.abs(epoch[key]! - b.history[i]![key]!) <= tolerance, `epoch ${i + 1} ${key}: ${epoch[key]} vs ${b.history[i]![key]}`);
    }
  });
}

describe('streaming training data from shards', () => {
  let digits: string;
  let sharded: { uint8: string; float32: string };

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    digits = await preprocessDigits(400, { width: 12, height: 12 });
    const store = artifactStore();
    sharded = {
      uint8: await writeSyntheticDataset(store, 200, { storage: 'uint8', channels: 3, shardSize: 30 }),
      float32: await writeSyntheticDataset(store, 200, { storage: 'float32', channels: 3, shardSize: 30 }),
    };
  });

  it('reads any rows of a split, across shards, as the pixels loading the whole split gives (uint8 and float32 shards)', async () => {
    const store = artifactStore();
    for (const uri of [sharded.uint8, sharded.float32]) {
      const manifest = await readManifest(store, uri);
      const whole = await loadSplitArrays(store, manifest, 'train');
      const reader = await ShardRowReader.open(store, manifest, 'train');
      try {
        const rows = seededPermutation(whole.count, 5).subarray(0, 70);
        const out = await reader.read(rows);
        rows.forEach((row, i) => {
          const expected = whole.images.subarray(row * reader.rowValues, (row + 1) * reader.rowValues);
          assert.deepEqual(out.subarray(i * reader.rowValues, (i + 1) * reader.rowValues), expected, `${manifest.dtype} row ${row}`);
        });
      } finally {
        await reader.close();
      }
    }
  });

  it('holds a shard file open only from the first batch of a pass that reads it until the last, all closed after the pass', async () => {
    const store = artifactStore();
    const manifest = await readManifest(store, sharded.uint8);
    const shards = splitShards(manifest, 'train');
    const pathOf = new Map(await Promise.all(shards.map(async (shard, s) => [await store.localPath(shard.imagesUri), s] as const)));
    const openShards = () => readdirSync('/proc/self/fd').flatMap((fd) => pathOf.get(orNothing(() => readlinkSync(`/proc/self/fd/${fd}`), '')) ?? []);
    // 7 shards of up to 30 images in windows of two; batches of 10, so a window spans several batches.
    const order = epochOrder(shards.map((shard) => shard.count), 60, 1, 0);
    const batches = [...batchesOf(order, 10, 0, Math.ceil(order.length / 10))];
    const starts = shards.map((_, s) => ({ firstRow: shards.slice(0, s).reduce((n, shard) => n + shard.count, 0) }));
    const readBy = batches.map((rows) => new Set([...rows].map((row) => shardOfRow(starts, row))));
    const span = (s: number) => ({ first: readBy.findIndex((read) => read.has(s)), last: readBy.length - 1 - [...readBy].reverse().findIndex((read) => read.has(s)) });
    const reader = await ShardRowReader.open(store, manifest, 'train');
    let mostOpen = 0;
    try {
      let i = 0;
      for await (const images of reader.batches(batches, 2)) {
        assert.equal(images.length, batches[i]!.length * reader.rowValues);
        const open = openShards();
        mostOpen = Math.max(mostOpen, open.length);
        // While batch i is taken, batches i+1 and i+2 are being read.
        for (const s of open) assert.ok(span(s).first <= i + 2 && span(s).last > i, `shard ${s} (read by batches ${JSON.stringify(span(s))}) open at batch ${i}`);
        i++;
      }
      assert.equal(i, batches.length);
      assert.deepEqual(openShards(), [], 'nothing open once the pass is done');
    } finally {
      await reader.close();
    }
    assert.ok(mostOpen > 0 && mostOpen < shards.length, `${mostOpen} of ${shards.length} shards open at most`);
  });

  it('scores a streamed split batch by batch as model.evaluate scores the whole split', async () => {
    const store = artifactStore();
    // 700 images in shards of 300: batches of 512 that span shards, the last one short.
    const manifest = await readManifest(store, await writeSyntheticDataset(store, 700, { storage: 'uint8', shardSize: 300 }));
    const model = buildModel(tf, modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [8] }), { height: 8, width: 8, channels: 1 }, 4, 1);
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
    const train = await loadSplit(tf, store, manifest, 'train');
    const [loss, accuracy] = (model.evaluate(train.images, train.labels, { batchSize: 512 }) as Scalar[]).map((s) => s.dataSync()[0]!);
    const feed = await openSplitFeed(tf, store, manifest, 'train', 'stream');
    const streamed = await scoreFeed(tf, model, feed, 512);
    await feed.close();
    assert.ok(Math.abs(streamed.loss - loss!) < 1e-5, `loss ${streamed.loss} vs ${loss}`);
    assert.ok(Math.abs(streamed.accuracy - accuracy!) < 1e-6, `accuracy ${streamed.accuracy} vs ${accuracy}`);
  });

  const job = (manifestUri: string, training: Partial<TrainJobInput['training']>, model: object = { architecture: 'cnn', filters: [4], hiddenUnits: [16], dropout: 0 }): TrainJobInput => ({
    artifacts: { kind: 'local', root: settings().artifactRoot },
    manifestUri,
    model: modelSpecSchema.parse(model),
    training: trainingSpecSchema.parse({ epochs: 2, batchSize: 32, learningRate: 0.01, earlyStopping: null, ...training }),
  });

  it('trains on the digits streamed exactly as from memory with the same seed: same batches, same history', async () => {
    const memory = await trainJob(job(digits, { dataLoading: 'memory' }), () => undefined);
    const stream = await trainJob(job(digits, { dataLoading: 'stream' }), () => undefined);
    assert.equal(memory.dataLoading, 'memory');
    assert.equal(stream.dataLoading, 'stream');
    assertSameHistory(memory, stream);
    const accuracy = (r: TrainJobResult) => r.history.at(-1)!.validationAccuracy!;
    assert.ok(accuracy(stream) > 0.3, `learned (10 classes): ${accuracy(stream)}`);
    assert.ok(Math.abs(accuracy(memory) - accuracy(stream)) <= 0.005);
  });

  it('shuffles within windows of whole shards the same way from memory and streamed', async () => {
    const mlp = { architecture: 'mlp', hiddenUnits: [8], dropout: 0 };
    const windowed = { shuffleWindow: 60, epochs: 1 };
    const memory = await trainJob(job(sharded.uint8, { ...windowed, dataLoading: 'memory' }, mlp), () => undefined);
    const stream = await trainJob(job(sharded.uint8, { ...windowed, dataLoading: 'stream' }, mlp), () => undefined);
    assertSameHistory(memory, stream);
    const whole = await trainJob(job(sharded.uint8, { epochs: 1, dataLoading: 'stream' }, mlp), () => undefined);
    assert.notEqual(whole.history[0]!.loss, stream.history[0]!.loss, 'the window changes the order');
  });
});
