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
});
