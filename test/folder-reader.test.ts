import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { folderReader } from '../lib/preprocessing/readers';

describe('folder reader', () => {
  const root = mkdtempSync(join(tmpdir(), 'folder-reader-'));
  mkdirSync(join(root, 'a'));
  const contents = [Buffer.from('first file'), Buffer.alloc(5000, 7), Buffer.from('third')];
  contents.forEach((content, i) => writeFileSync(join(root, 'a', `${i}.bin`), content));
  const images = contents.map((_, i) => ({ path: `a/${i}.bin`, label: 0 }));

  after(() => rmSync(root, { recursive: true, force: true }));

  it('hashes every file and returns its contents', async () => {
    const reads = await folderReader(root, 1 << 20).read(images, Infinity);
    reads.forEach((read, i) => {
      assert.ok(read.ok);
      assert.equal(read.sha256, createHash('sha256').update(contents[i]!).digest('hex'));
      assert.deepEqual(read.input, contents[i]);
    });
  });

  it('returns contents up to the bytes asked for (at least one file), and only hashes the rest', async () => {
    const reads = await folderReader(root, 1 << 20).read(images, 100);
    assert.deepEqual(
      reads.map((read) => read.ok && read.input !== null),
      [true, false, true],
    );
    assert.ok(reads.every((read) => read.ok && read.bytes > 0));
  });

  it("returns a batch's contents in shared memory, which closing the reader hands back for the next reads", async () => {
    const bufferOf = (read: Awaited<ReturnType<ReturnType<typeof folderReader>['read']>>[number]) => (read.ok ? (read.input as Buffer).buffer : undefined);
    const first = folderReader(root, 1 << 20);
    const reads = await first.read(images, Infinity);
    const memory = bufferOf(reads[0]!);
    assert.ok(memory instanceof SharedArrayBuffer, 'decoder threads get the bytes without a copy');
    assert.ok(reads.every((read) => bufferOf(read) === memory), 'one buffer for the chunk');

    // Still in use: another reader gets other memory.
    const second = folderReader(root, 1 << 20);
    const secondMemory = bufferOf((await second.read(images, Infinity))[0]!);
    assert.notEqual(secondMemory, memory);
    await second.close();
    await first.close();
    // Now free: the next reads, of another reader, reuse one of them rather than allocate. Each thread sees its own
    // object for the same memory: marks past the contents tell the buffers apart.
    const mark = (buffer: ArrayBufferLike | undefined, value: number) => (new Uint8Array(buffer!)[buffer!.byteLength - 1] = value);
    mark(memory, 201);
    mark(secondMemory, 202);
    const third = folderReader(root, 1 << 20);
    const again = await third.read(images, Infinity);
    assert.deepEqual(again.map((read) => read.ok && read.input), contents);
    const reused = bufferOf(again[0]!)!;
    assert.ok([201, 202].includes(new Uint8Array(reused)[reused.byteLength - 1]!), 'memory reused');
    // A file read again for one image: memory of its own, not held until the reader closes.
    const once = await third.read(images.slice(1, 2), Infinity, 'oneImage');
    assert.ok(!(bufferOf(once[0]!) instanceof SharedArrayBuffer));
    assert.deepEqual(once[0]!.ok && once[0]!.input, contents[1]);
    await third.close();
  });
});
