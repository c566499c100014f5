import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactPathError, LocalArtifactStore, confine } from '../lib/artifacts';
import { DiskFullError } from '../lib/atomic-write';
import { fillDevice, mountTmpfs, tmpfsUnavailable, unmountTmpfs } from './helpers/tmpfs';

const newStore = () => new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'artifacts-')));
const writerScript = join(__dirname, 'helpers', 'artifact-writer.js');
const straceUnavailable = spawnSync('strace', ['-V']).status === 0 ? undefined : 'strace is not installed (scripts/provision-test-tools.sh installs it)';

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Names published in the content-addressed area (`sha256/<xx>/<name>`), staging names left out. */
function published(store: LocalArtifactStore): string[] {
  return readdirSync(join(store.root, 'sha256'), { recursive: true })
    .map(String)
    .filter((path) => path.split('/').length === 2 && !path.includes('.tmp-'));
}

/** Waits until the writer has put some bytes on disk, anywhere in the store, kills it and returns the bytes left there. */
async function killMidWrite(writer: ChildProcess, root: string): Promise<number> {
  const exited = new Promise((resolve) => writer.once('exit', resolve));
  for (;;) {
    assert.equal(writer.exitCode, null, 'the writer finished before it could be killed');
    const written = allFiles(root).reduce((sum, file) => sum + (statSync(file, { throwIfNoEntry: false })?.size ?? 0), 0);
    if (written > 0) {
      writer.kill('SIGKILL');
      await exited;
      return allFiles(root).reduce((sum, file) => sum + statSync(file).size, 0);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

interface Syscall {
  at: number;
  name: string;
  args: string;
  result: number;
}

/** Runs the artifact writer under strace and returns its file syscalls, all threads, in time order. */
function traceWriter(root: string, kind: 'blob' | 'directory', bytes = 4096): Syscall[] {
  const logs = mkdtempSync(join(tmpdir(), 'strace-'));
  execFileSync('strace', ['-ff', '-ttt', '-qq', '-s', '4096', '-o', join(logs, 'trace'), '-e', 'trace=openat,close,fsync,fdatasync,rename,renameat,renameat2',
    process.execPath, writerScript, root, kind, String(bytes), 'x'], { env: { ...process.env, UV_USE_IO_URING: '0' } });
  const calls = readdirSync(logs).flatMap((name) =>
    readFileSync(join(logs, name), 'utf8').split('\n').flatMap((line) => {
      const match = /^(\d+\.\d+) (\w+)\((.*)\) += (-?\d+)/.exec(line);
      return match ? [{ at: Number(match[1]), name: match[2]!, args: match[3]!, result: Number(match[4]) }] : [];
    }),
  );
  rmSync(logs, { recursive: true });
  return calls.sort((a, b) => a.at - b.at);
}

/** The paths fsynced (by their descriptors) before and after the rename that published `target`. */
function syncsAroundRename(calls: Syscall[], target: string): { staging: string; before: string[]; after: string[] } {
  const open = new Map<number, string>();
  const synced: { at: number; path: string }[] = [];
  let rename: { at: number; staging: string } | undefined;
  for (const call of calls) {
    const paths = [...call.args.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    if (call.name === 'openat' && call.result >= 0) open.set(call.result, paths[0]!);
    else if (call.name === 'close') open.delete(Number(call.args));
    else if ((call.name === 'fsync' || call.name === 'fdatasync') && call.result === 0) synced.push({ at: call.at, path: open.get(Number(call.args))! });
    else if (call.name.startsWith('rename') && call.result === 0 && paths[1] === target) rename = { at: call.at, staging: paths[0]! };
  }
  assert.ok(rename, `no rename published ${target}`);
  return {
    staging: rename.staging,
    before: synced.filter((s) => s.at < rename.at).map((s) => s.path),
    after: synced.filter((s) => s.at > rename.at).map((s) => s.path),
  };
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

  it('replaces named artifacts in place, leaving one file', async () => {
    const store = newStore();
    const uri = await store.putNamed('runs/a/checkpoint.json', '{"epoch":1}');
    await store.putNamed('runs/a/checkpoint.json', '{"epoch":2}');
    assert.deepEqual(await store.readJson(uri), { epoch: 2 });
    assert.equal(allFiles(store.root).length, 1);
  });

  for (const kind of ['blob', 'directory'] as const) {
    it(`a ${kind} writer killed mid-write publishes nothing, and the retry stores the artifact whole`, async () => {
      const store = newStore();
      const fileBytes = kind === 'blob' ? 128 << 20 : 64 << 20;
      const total = kind === 'blob' ? fileBytes : 2 * fileBytes;
      const writer = spawn(process.execPath, [writerScript, store.root, kind, String(fileBytes), 'artifact'], { stdio: 'ignore' });
      const leftOnDisk = await killMidWrite(writer, store.root);
      assert.ok(leftOnDisk > 0 && leftOnDisk < total, `killed mid-write: ${leftOnDisk} of ${total} bytes written`);
      assert.deepEqual(published(store), [], 'nothing is visible under a final name');

      const data = Buffer.alloc(fileBytes, 'artifact');
      if (kind === 'blob') {
        const stored = await store.putBlob(data, '.bin');
        assert.equal(stored.sha256, createHash('sha256').update(data).digest('hex'));
        assert.ok((await store.read(stored.uri)).equals(data));
      } else {
        const stored = await store.putDirectory({ 'a.bin': data, 'b.bin': data });
        const files = await store.readDirectory(stored.uri);
        assert.deepEqual(Object.keys(files).sort(), ['a.bin', 'b.bin']);
        assert.ok(files['a.bin']!.equals(data) && files['b.bin']!.equals(data));
      }
      assert.equal(published(store).length, 1);
    });
  }

  it('flushes a blob and its folder to disk around the rename that publishes it', { skip: straceUnavailable }, () => {
    const store = newStore();
    const sha256 = createHash('sha256').update(Buffer.alloc(4096, 'x')).digest('hex');
    const target = join(store.root, 'sha256', sha256.slice(0, 2), `${sha256}.bin`);
    const { staging, before, after } = syncsAroundRename(traceWriter(store.root, 'blob'), target);
    assert.ok(before.includes(staging), 'the file is flushed before it is renamed into place');
    assert.ok(after.includes(dirname(target)), 'the folder holding the new name is flushed after the rename');
  });

  it('writes a large blob with direct I/O and flushes it and its folder around the rename as well', { skip: straceUnavailable }, () => {
    const store = newStore();
    const bytes = 2 * 1024 * 1024;
    const sha256 = createHash('sha256').update(Buffer.alloc(bytes, 'x')).digest('hex');
    const target = join(store.root, 'sha256', sha256.slice(0, 2), `${sha256}.bin`);
    const calls = traceWriter(store.root, 'blob', bytes);
    const { staging, before, after } = syncsAroundRename(calls, target);
    assert.ok(calls.some((c) => c.name === 'openat' && c.args.includes(`"${staging}"`) && c.args.includes('O_DIRECT')), 'the staging file is opened for direct I/O');
    assert.ok(before.includes(staging), 'the file is flushed before it is renamed into place');
    assert.ok(after.includes(dirname(target)), 'the folder holding the new name is flushed after the rename');
    assert.equal(readFileSync(target).length, bytes);
  });

  it('flushes every file of a directory artifact, the directory and its parent around the rename', { skip: straceUnavailable }, () => {
    const store = newStore();
    const calls = traceWriter(store.root, 'directory');
    const target = calls.flatMap((c) => (c.name.startsWith('rename') && c.result === 0 ? [[...c.args.matchAll(/"([^"]*)"/g)][1]![1]!] : []))
      .find((path) => relative(join(store.root, 'sha256'), path).split('/').length === 2)!;
    const { staging, before, after } = syncsAroundRename(calls, target);
    for (const path of [join(staging, 'a.bin'), join(staging, 'b.bin'), staging]) assert.ok(before.includes(path), `${path} flushed before the rename`);
    assert.ok(after.includes(dirname(target)), 'the folder holding the new name is flushed after the rename');
  });

  it('rewrites a content-addressed blob found truncated or altered at its final name', async () => {
    const store = newStore();
    const data = Buffer.from('bytes that matter '.repeat(1000));
    const { uri } = await store.putBlob(data, '.bin');
    const path = store.pathOf(uri);
    const damages = {
      truncated: () => truncateSync(path, 100),
      'bytes flipped': () => {
        const bytes = readFileSync(path);
        bytes[500] = bytes[500]! ^ 0xff;
        writeFileSync(path, bytes);
      },
    };
    for (const [damage, apply] of Object.entries(damages)) {
      apply();
      assert.equal(await store.isIntactBlob(uri), false, `${damage}: detected`);
      assert.equal((await store.putBlob(data, '.bin')).uri, uri);
      assert.ok((await store.read(uri)).equals(data), `${damage}: rewritten by the next put`);
      assert.equal(await store.isIntactBlob(uri), true);
    }
    assert.equal(allFiles(store.root).length, 1);
  });

  it('rewrites a directory artifact with an altered, missing or extra file', async () => {
    const store = newStore();
    const files = { 'model.json': Buffer.from('{"layers":[]}'), 'weights.bin': Buffer.alloc(4096, 3) };
    const { uri } = await store.putDirectory(files);
    const dir = store.pathOf(uri);
    const damages = {
      altered: () => writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(4096, 4)),
      missing: () => rmSync(join(dir, 'model.json')),
      extra: () => writeFileSync(join(dir, 'stray.bin'), 'x'),
    };
    for (const [damage, apply] of Object.entries(damages)) {
      apply();
      assert.equal((await store.putDirectory(files)).uri, uri);
      assert.deepEqual(await store.readDirectory(uri), files, `${damage}: rewritten by the next put`);
    }
    assert.equal(allFiles(store.root).length, 2, 'the damaged copies are gone');
  });

  it('says the disk is full, leaves nothing partial behind, and writes once space is freed', { skip: tmpfsUnavailable }, async () => {
    const mount = mountTmpfs(2);
    try {
      const store = new LocalArtifactStore(mount);
      const ballast = join(mount, 'ballast');
      fillDevice(ballast);
      const data = Buffer.alloc(256 * 1024, 'd');
      const writes = {
        blob: () => store.putBlob(data, '.bin'),
        directory: () => store.putDirectory({ 'a.bin': data, 'b.bin': data }),
        named: () => store.putNamed('runs/a/checkpoint.bin', data),
      };
      for (const [kind, write] of Object.entries(writes)) {
        await assert.rejects(write(), (err: Error) => err instanceof DiskFullError && /^Disk full/.test(err.message), kind);
      }
      const left = readdirSync(mount, { recursive: true }).map(String);
      assert.deepEqual(left.filter((path) => path.includes('.tmp-') || statSync(join(mount, path)).isFile()), ['ballast'], 'no staging or partial file is left');

      rmSync(ballast);
      for (const write of Object.values(writes)) await write();
      assert.ok(await store.isIntactBlob((await writes.blob()).uri));
    } finally {
      unmountTmpfs(mount);
    }
  });

  it('refuses URIs and paths outside its root', async () => {
    const store = newStore();
    assert.throws(() => store.pathOf('file:///etc/passwd'), ArtifactPathError);
    assert.throws(() => store.pathOf('../outside'), ArtifactPathError);
    assert.throws(() => store.pathOf('a/../../outside'), ArtifactPathError);
    assert.throws(() => store.pathOf('s3://bucket/key'), /Unsupported artifact URI scheme/);
    await assert.rejects(store.read('file:///etc/hostname'), ArtifactPathError);
    for (const uri of ['artifact://../outside', 'artifact://a/../../outside', 'artifact:///etc/passwd', 'artifact://']) {
      assert.throws(() => store.pathOf(uri), ArtifactPathError, uri);
      await assert.rejects(store.read(uri), ArtifactPathError, uri);
    }
    const inside = store.pathOf('a/b.json');
    assert.equal(store.uriOf(inside), 'artifact://a/b.json');
    assert.equal(store.pathOf('artifact://a/b.json'), inside);
  });

  it('confine accepts the root and what lies below it only', () => {
    assert.equal(confine('/data', 'x/y', 'dataset'), '/data/x/y');
    assert.equal(confine('/data', '/data', 'dataset'), '/data');
    assert.throws(() => confine('/data', '/database', 'dataset'), /outside \/data/);
    assert.throws(() => confine('/data', '..', 'dataset'), ArtifactPathError);
  });
});
