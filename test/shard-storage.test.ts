import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { artifactStore } from '../lib/artifacts';
import { readManifest } from '../lib/datasets/manifest';
import { loadSplitArrays } from '../lib/datasets/shards';
import { SPLITS } from '../lib/split';
import { preprocessDigits } from './helpers/digits';
import { temporaryDataDir } from './helpers/temporal';

describe('shard storage', () => {
  const preprocess = { channels: 3 as const, width: 12, height: 12, normalization: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] }, augmentation: { copies: 1 } };
  let uint8Uri: string;
  let float32Uri: string;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    uint8Uri = await preprocessDigits(400, preprocess);
    float32Uri = await preprocessDigits(400, { ...preprocess, storage: 'float32' });
  });

  it('stores uint8 pixels by default, a quarter of the bytes of float32 shards', async () => {
    const store = artifactStore();
    const [uint8, float32] = await Promise.all([readManifest(store, uint8Uri), readManifest(store, float32Uri)]);
    assert.equal(uint8.dtype, 'uint8');
    assert.equal(float32.dtype, 'float32');
    const bytes = async (uris: string[]) => (await Promise.all(uris.map((uri) => store.read(uri)))).reduce((n, b) => n + b.length, 0);
    const [small, large] = await Promise.all([bytes(uint8.shards.map((s) => s.imagesUri)), bytes(float32.shards.map((s) => s.imagesUri))]);
    assert.ok(small * 3.9 < large, `uint8 shards take ${small} bytes, float32 ${large}`);
  });

  it('loads uint8 shards into exactly the normalized pixels float32 shards hold, split by split', async () => {
    const store = artifactStore();
    const [uint8, float32] = await Promise.all([readManifest(store, uint8Uri), readManifest(store, float32Uri)]);
    for (const split of SPLITS) {
      const [fromUint8, fromFloat32] = await Promise.all([loadSplitArrays(store, uint8, split), loadSplitArrays(store, float32, split)]);
      assert.ok(fromUint8.count > 0);
      assert.equal(fromUint8.count, fromFloat32.count);
      assert.deepEqual(fromUint8.labels, fromFloat32.labels);
      assert.deepEqual(fromUint8.images, fromFloat32.images, `${split} pixels differ`);
      assert.ok(fromUint8.images.some((v) => v < 0) && fromUint8.images.some((v) => v > 1), 'normalized, not raw or scaled only');
    }
  });
});
