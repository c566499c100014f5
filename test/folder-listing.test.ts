import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { listImageFolder } from '../lib/datasets/folder';

describe('listImageFolder', () => {
  it('lists each class folder recursively, paths in code-unit order, links flagged, hidden entries skipped', async () => {
    const root = mkdtempSync(join(tmpdir(), 'folder-listing-'));
    const files = ['dog/b.png', 'dog/B.png', 'dog/a10.png', 'dog/a9.png', 'dog/deep/er/x.png', 'dog/é.png', 'cat/1.png', 'cat/.hidden.png', '.git/HEAD'];
    for (const file of files) {
      mkdirSync(join(root, file, '..'), { recursive: true });
      writeFileSync(join(root, file), file);
    }
    mkdirSync(join(root, 'cat', '.cache'));
    writeFileSync(join(root, 'cat', '.cache', 'skipped.png'), '');
    symlinkSync(join(root, 'dog', 'b.png'), join(root, 'cat', 'link.png'));
    mkdirSync(join(root, 'empty'));

    const counts: number[] = [];
    const listing = await listImageFolder(root, (count) => counts.push(count));
    assert.deepEqual(listing.classes, ['cat', 'dog', 'empty']);
    assert.deepEqual(listing.perClass, [
      [{ path: 'cat/1.png', label: 0 }, { path: 'cat/link.png', label: 0, link: true }],
      ['dog/B.png', 'dog/a10.png', 'dog/a9.png', 'dog/b.png', 'dog/deep/er/x.png', 'dog/é.png'].map((path) => ({ path, label: 1 })),
      [],
    ]);
    // Every file and folder walked but the hidden ones: cat (2), dog (6 with deep/), deep (er), er (x.png), empty.
    assert.equal(counts.reduce((a, b) => a + b, 0), 2 + 6 + 1 + 1 + 0);
  });
});
