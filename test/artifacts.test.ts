import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ArtifactPathError, LocalArtifactStore, confine } from '../lib/artifacts';

const newStore = () => new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'artifacts-')));

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('LocalArtifactStore', () => {
  it('addresses blobs by content: the same bytes give the same URI and one file', async () => {
    const store = newStore();
    const a = await store.putBlob(Buffer.from('hello'), '.txt');
    const b = await store.putBlob(Buffer.from('hello'), '.txt');
    const c = await store.putBlob(Buffer.from('world'), '.txt');
    assert.equal(a.uri, b.uri);
    assert.notEqual(a.uri, c.uri);
    assert.equal(a.sha256, '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    assert.ok(a.uri.endsWith(`${a.sha256}.txt`));
    assert.equal((await store.read(a.uri)).toString(), 'hello');
    assert.equal(allFiles(store.root).length, 2, 'no temporary files are left behind');
  });

  it('stores directory artifacts addressed by names and contents', async () => {
    const store = newStore();
    const first = await store.putDirectory({ 'model.json': Buffer.from('{}'), 'weights.bin': Buffer.from([1, 2, 3]) });
    const again = await store.putDirectory({ 'weights.bin': Buffer.from([1, 2, 3]), 'model.json': Buffer.from('{}') });
    const renamed = await store.putDirectory({ 'model.json': Buffer.from('{}'), 'other.bin': Buffer.from([1, 2, 3]) });
    assert.equal(first.uri, again.uri);
    assert.notEqual(first.uri, renamed.uri);
    const files = await store.readDirectory(first.uri);
    assert.deepEqual(Object.keys(files).sort(), ['model.json', 'weights.bin']);
    assert.deepEqual([...files['weights.bin']!], [1, 2, 3]);
    await assert.rejects(store.putDirectory({ '../escape': Buffer.from('x') }), ArtifactPathError);
  });

  it('replaces named artifacts atomically', async () => {
    const store = newStore();
    const uri = await store.putNamed('runs/a/checkpoint.json', '{"epoch":1}');
    await store.putNamed('runs/a/checkpoint.json', '{"epoch":2}');
    assert.deepEqual(await store.readJson(uri), { epoch: 2 });
    assert.equal(allFiles(store.root).length, 1);
  });

  it('refuses URIs and paths outside its root', async () => {
    const store = newStore();
    assert.throws(() => store.pathOf('file:///etc/passwd'), ArtifactPathError);
    assert.throws(() => store.pathOf('../outside'), ArtifactPathError);
    assert.throws(() => store.pathOf('a/../../outside'), ArtifactPathError);
    assert.throws(() => store.pathOf('s3://bucket/key'), /Unsupported artifact URI scheme/);
    await assert.rejects(store.read('file:///etc/hostname'), ArtifactPathError);
    const inside = store.pathOf('a/b.json');
    assert.equal(fileURLToPath(store.uriOf(inside)), inside);
  });

  it('confine accepts the root and what lies below it only', () => {
    assert.equal(confine('/data', 'x/y', 'dataset'), '/data/x/y');
    assert.equal(confine('/data', '/data', 'dataset'), '/data');
    assert.throws(() => confine('/data', '/database', 'dataset'), /outside \/data/);
    assert.throws(() => confine('/data', '..', 'dataset'), ArtifactPathError);
  });
});
