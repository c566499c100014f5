import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeFileAtomic } from '../lib/atomic-write';
import { writeFileDirect } from '../lib/direct-write';

// In the repository's data folder rather than the OS's temporary folder, which may be a tmpfs.
const scratchRoot = join(__dirname, '..', '..', '.data', 'test-scratch');
const scratch = () => {
  mkdirSync(scratchRoot, { recursive: true });
  return mkdtempSync(join(scratchRoot, 'direct-write-'));
};
const noDirectIo = constants.O_DIRECT ? undefined : 'this platform has no O_DIRECT';
const noFincore = spawnSync('fincore', ['--version']).status === 0 ? undefined : 'fincore (util-linux) is not installed';

/** Bytes of `path` in the page cache, as fincore counts them. */
function cachedBytes(path: string): number {
  const out = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return Number(out.stdout.trim());
}

const MiB = 1024 * 1024;

describe('direct writes', { skip: noDirectIo }, () => {
  const dirs: string[] = [];
  const scratchDir = () => dirs[dirs.push(scratch()) - 1]!;
  after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  it('writes files of any length byte for byte: whole and partial blocks, around the 4 MiB chunks it copies through', async () => {
    const dir = scratchDir();
    for (const bytes of [0, 1, 4095, 4096, 4097, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 9 * MiB + 12345]) {
      const data = randomBytes(bytes);
      const path = join(dir, `${bytes}.bin`);
      assert.equal(await writeFileDirect(path, data), true, `${bytes} bytes written directly`);
      assert.ok(readFileSync(path).equals(data), `${bytes} bytes read back as written`);
    }
  });

  it('leaves nothing of what it wrote in the page cache', { skip: noFincore }, async () => {
    const path = join(scratchDir(), 'shard.npy');
    assert.equal(await writeFileDirect(path, randomBytes(6 * MiB)), true);
    assert.equal(cachedBytes(path), 0);
  });

  it('writeFileAtomic publishes files from 1 MiB on directly, smaller ones through the page cache', { skip: noFincore }, async () => {
    const dir = scratchDir();
    const large = randomBytes(2 * MiB);
    const small = randomBytes(64 * 1024);
    await writeFileAtomic(join(dir, 'large.npy'), large);
    await writeFileAtomic(join(dir, 'small.json'), small);
    assert.equal(cachedBytes(join(dir, 'large.npy')), 0);
    assert.ok(cachedBytes(join(dir, 'small.json')) > 0);
    assert.ok(readFileSync(join(dir, 'large.npy')).equals(large));
    assert.deepEqual(readdirSync(dir).sort(), ['large.npy', 'small.json'], 'no staging file is left');
  });

  it('answers false where the filesystem refuses direct I/O, and throws any other failure', async () => {
    const path = join(scratchDir(), 'refused.bin');
    const failing = (code: string) => async () => {
      throw Object.assign(new Error(`open failed: ${code}`), { code });
    };
    assert.equal(await writeFileDirect(path, randomBytes(MiB), failing('EINVAL')), false);
    await assert.rejects(writeFileDirect(path, randomBytes(MiB), failing('ENOSPC')), /ENOSPC/);
  });
});
