import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { LocalArtifactStore } from '../lib/artifacts';
import { loadSettings } from '../lib/config';
import { listImageFolder } from '../lib/datasets/folder';
import type { ListedImage } from '../lib/datasets/listing';
import { preprocessImages } from '../lib/preprocessing/batch';
import { decode } from '../lib/preprocessing/decoders';
import { withinLimits } from '../lib/preprocessing/limits';
import { TransientReadError } from '../lib/preprocessing/quarantine';
import { folderReader, type ImageReader } from '../lib/preprocessing/readers';
import { acquireShardMemory } from '../lib/preprocessing/shard-memory';
import { seededRandom } from '../lib/random';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';

const MiB = 1024 * 1024;

/** `count` noisy JPEGs (different for each seed) in one class folder; its listed images. */
async function jpegFolder(seed: number, count: number): Promise<{ root: string; images: ListedImage[] }> {
  const root = mkdtempSync(join(tmpdir(), 'shard-memory-'));
  mkdirSync(join(root, 'noise'));
  const random = seededRandom(seed);
  for (let i = 0; i < count; i++) {
    const pixels = Uint8Array.from({ length: 48 * 40 * 3 }, () => Math.floor(random() * 256));
    writeFileSync(join(root, 'noise', `${i}.jpg`), await sharp(pixels, { raw: { width: 48, height: 40, channels: 3 } }).jpeg().toBuffer());
  }
  return { root, images: (await listImageFolder(root)).perClass.flat() };
}

describe('shard memory', () => {
  it('gives released memory to the next batch that fits in it: the smallest such, else new memory', () => {
    const small = acquireShardMemory(3 * MiB);
    const large = acquireShardMemory(10 * MiB);
    assert.ok(small.bytes.buffer instanceof SharedArrayBuffer);
    assert.equal(small.bytes.byteLength, 3 * MiB);
    const [smallBuffer, largeBuffer] = [small.bytes.buffer, large.bytes.buffer];
    small.release();
    large.release();
    large.release();
    const reused = acquireShardMemory(2 * MiB);
    assert.equal(reused.bytes.buffer, smallBuffer);
    assert.equal(reused.bytes.byteLength, 2 * MiB);
    const next = acquireShardMemory(2 * MiB);
    assert.equal(next.bytes.buffer, largeBuffer);
    const fresh = acquireShardMemory(2 * MiB);
    assert.notEqual(fresh.bytes.buffer, smallBuffer);
    assert.notEqual(fresh.bytes.buffer, largeBuffer);
    for (const memory of [reused, next, fresh]) memory.release();
  });

  it('is not shared memory beyond a quarter of what the pool keeps idle', () => {
    const large = acquireShardMemory(200 * MiB);
    assert.ok(!(large.bytes.buffer instanceof SharedArrayBuffer));
    assert.equal(large.bytes.byteLength, 200 * MiB);
    large.release();
    assert.ok(acquireShardMemory(128 * MiB).bytes.buffer instanceof SharedArrayBuffer);
  });

  it('the decoder threads write pixels into the shared memory they are given, the same pixels they send back otherwise', async () => {
    const spec = withinLimits(preprocessSpecSchema.parse({ width: 48, height: 40, channels: 3 }), 1, loadSettings().limits);
    const { root, images } = await jpegFolder(3, 2);
    const memory = acquireShardMemory(2 * 48 * 40 * 3);
    for (const [i, image] of images.entries()) {
      const bytes = readFileSync(join(root, image.path));
      const into = memory.bytes.subarray(i * 48 * 40 * 3, (i + 1) * 48 * 40 * 3);
      const inPlace = await decode(bytes, spec, undefined, into);
      assert.equal(inPlace.decoder, 'tensorflow');
      assert.equal(inPlace.pixels, into);
      assert.deepEqual(Buffer.from(into), Buffer.from((await decode(bytes, spec)).pixels));
    }
    memory.release();
  });

  it("reads a file again for its image alone, in memory of its own rather than the reader's, when the batch's bytes outgrow retainBytes", async () => {
    const spec = withinLimits(preprocessSpecSchema.parse({ width: 48, height: 40, channels: 3 }), 40, loadSettings().limits);
    const { root, images } = await jpegFolder(3, 40);
    const reader = folderReader(root, spec.maxFileBytes);
    const scopes: (string | undefined)[] = [];
    const inputs: (ArrayBufferLike | undefined)[] = [];
    const recording: ImageReader = {
      async read(chunk, returnBytes, scope) {
        scopes.push(scope);
        const reads = await reader.read(chunk, returnBytes, scope);
        if (scope === 'oneImage') inputs.push(reads[0]!.ok ? (reads[0]!.input as Buffer).buffer : undefined);
        return reads;
      },
    };
    const run = await preprocessImages(images, recording, spec, new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'shard-memory-store-'))), { retainBytes: 0 });
    await reader.close();
    assert.equal(run.output.byHash.sha256.length, 40);
    // With nothing retained, each chunk keeps the bytes of its first file only (at least one comes back).
    assert.ok(scopes.filter((scope) => scope === 'oneImage').length >= 40 - Math.ceil(40 / 64), scopes.join());
    assert.ok(inputs.length > 0 && inputs.every((buffer) => buffer !== undefined && !(buffer instanceof SharedArrayBuffer)), 'not memory held until the reader closes');
  });

  it('a batch that fails gives its memory back only once none of its images is decoded any more: the next batch stores its own pixels', async () => {
    const spec = withinLimits(preprocessSpecSchema.parse({ width: 48, height: 40, channels: 3 }), 300, loadSettings().limits);
    const first = await jpegFolder(1, 300);
    const second = await jpegFolder(2, 300);
    const reference = await preprocessImages(second.images, folderReader(second.root, spec.maxFileBytes), spec, new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'shard-memory-store-'))));

    // Every image is read again to be decoded (nothing retained); the 40th of those reads fails as a worker would, and
    // the reads after it take a while, so that their images are still to be decoded when the batch fails.
    const reader = folderReader(first.root, spec.maxFileBytes);
    let readsAgain = 0;
    let pending = 0;
    const failing: ImageReader = {
      async read(images, returnBytes, scope) {
        if (returnBytes !== Infinity) return reader.read(images, returnBytes, scope);
        const number = ++readsAgain;
        if (number === 40) throw new TransientReadError('out of file handles', 'EMFILE');
        pending++;
        try {
          if (number > 40) await new Promise((resolve) => setTimeout(resolve, 200));
          return await reader.read(images, returnBytes, scope);
        } finally {
          pending--;
        }
      },
    };
    const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'shard-memory-store-')));
    await assert.rejects(preprocessImages(first.images, failing, spec, store, { retainBytes: 0 }), TransientReadError);
    assert.equal(pending, 0, 'the failed batch returned while images of it were still being read to be decoded');
    const decodesBefore = readsAgain;
    // The next batch takes the failed one's memory at once; nothing of the failed batch may land in it any more.
    const next = await preprocessImages(second.images, folderReader(second.root, spec.maxFileBytes), spec, store);
    assert.equal(readsAgain, decodesBefore, 'the failed batch started no decoding after it failed');
    // At the failure, each of the 32 decoding lanes is reading at most one image; no lane starts another after it.
    assert.ok(decodesBefore <= 40 + 32, `the failed batch stopped decoding (${decodesBefore} of ${first.images.length} images read again)`);
    assert.deepEqual(
      next.output.shards.map((s) => [s.split, s.imagesUri.split('/').at(-1)]),
      reference.output.shards.map((s) => [s.split, s.imagesUri.split('/').at(-1)]),
    );
  });
});
