import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { parseGcOptions } from '../cli/gc';
import { LocalArtifactStore } from '../lib/artifacts';
import { kindOf, type StoredEntry } from '../lib/gc/backend';
import { parseDuration, OptionError } from '../lib/gc/duration';
import { EntryIndex } from '../lib/gc/entry-index';
import { LocalGcBackend } from '../lib/gc/local-backend';
import { planCollection } from '../lib/gc/plan';
import { referencesInValue } from '../lib/gc/references';

const DAY = 86_400_000;
const newStore = () => new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'gc-')));

/** Sets the modification time of a file or folder and of everything in it. */
function age(path: string, days: number): void {
  const when = new Date(Date.now() - days * DAY);
  utimesSync(path, when, when);
  try {
    for (const name of readdirSync(path, { recursive: true })) utimesSync(join(path, String(name)), when, when);
  } catch {
    // a file: nothing in it
  }
}

describe('reference scanner', () => {
  const store = newStore();
  const { references } = new LocalGcBackend(store);
  // The file:// URIs histories recorded before store-relative URIs hold.
  const uri = (key: string) => pathToFileURL(join(store.root, key)).href;

  it('finds the store keys of file:// and artifact:// URIs in nested values, payload bytes and JSON inside JSON, and nothing else', () => {
    const payload = new TextEncoder().encode(JSON.stringify({ manifestUri: uri('sha256/aa/a.json') }));
    const value = {
      input: [{ data: payload }],
      result: JSON.stringify(JSON.stringify({ modelUri: uri('sha256/bb/b') })),
      details: `<a href="${uri('sha256/cc/c/index.html')}">report</a> and ${uri('cache/preprocess/dd/d.json')}\n`,
      storeRelative: ['artifact://sha256/gg/g.npy', 'artifact://checkpoints/train-1/latest.json'],
      elsewhere: ['file:///somewhere/else/sha256/ee/e.npy', `${pathToFileURL(store.root).href}/../outside.json`, 's3://bucket/sha256/ff/f', 'artifact://../outside.json'],
    };
    assert.deepEqual(
      [...referencesInValue(references, value)].sort(),
      ['cache/preprocess/dd/d.json', 'checkpoints/train-1/latest.json', 'sha256/aa/a.json', 'sha256/bb/b', 'sha256/cc/c/index.html', 'sha256/gg/g.npy'],
    );
  });
});

describe('entry index', () => {
  const entry = (key: string): StoredEntry => ({ key, bytes: 1, modified: new Date(0) });
  const dir = { ...entry('sha256/ab/dir'), files: ['model.json'] };
  const objects = [entry('sha256/cd/obj/model.json'), entry('sha256/cd/obj/weights.bin')];
  const index = new EntryIndex([dir, ...objects, entry('sha256/ab/dir.json')]);

  it('resolves a reference to an entry, to a file inside a directory entry, or to a prefix of objects', () => {
    assert.deepEqual(index.resolve('sha256/ab/dir'), [dir]);
    assert.deepEqual(index.resolve('sha256/ab/dir/model.json'), [dir]);
    assert.deepEqual(index.resolve('sha256/cd/obj'), objects);
    assert.deepEqual(index.resolve('sha256/ab/missing'), []);
  });
});

describe('durations and kinds', () => {
  it('parses a number and a unit, and names the option when it cannot', () => {
    assert.equal(parseDuration('7d', '--older-than'), 7 * DAY);
    assert.equal(parseDuration('1.5h', '--older-than'), 90 * 60_000);
    assert.throws(() => parseDuration('7 days', '--older-than'), (err: Error) => err instanceof OptionError && /--older-than "7 days"/.test(err.message));
  });

  it('reads the gc command\'s options, defaulting to 7 days, and names what is wrong', () => {
    assert.deepEqual(parseGcOptions([]), { olderThanMs: 7 * DAY, dryRun: false });
    assert.deepEqual(parseGcOptions(['--dry-run', '--older-than', '12h']), { olderThanMs: 12 * 3_600_000, dryRun: true });
    assert.throws(() => parseGcOptions(['--older-than']), (err: Error) => err instanceof OptionError && /"--older-than"; usage: cli gc/.test(err.message));
    assert.throws(() => parseGcOptions(['--force']), (err: Error) => err instanceof OptionError && /unexpected argument "--force"/.test(err.message));
  });

  it('tells content-addressed, named and staging keys apart', () => {
    assert.equal(kindOf('sha256/ab/abc.npy'), 'content');
    assert.equal(kindOf('cache/preprocess/ab/abc.json'), 'named');
    assert.equal(kindOf('tmp/123-abcdef'), 'staging');
    assert.equal(kindOf('sha256/ab/abc.npy.tmp-123-0f9e'), 'staging');
    assert.equal(kindOf('sha256/ab/abc.discard-123-0f9e'), 'staging');
  });
});

describe('mark and sweep on a local store', () => {
  it('keeps what roots reach, recent artifacts, open runs\' checkpoints and caches of kept shards; removes the rest', async () => {
    const store = newStore();
    const backend = new LocalGcBackend(store);
    const key = (uri: string) => backend.references.keyOf(uri)!;
    const blob = async (text: string, extension = '.npy') => (await store.putBlob(Buffer.from(text), extension)).uri;

    // Reachable from a kept result: a manifest, its shards and index; a listing read through one of its files.
    const shards = [await blob('shard 1'), await blob('shard 2')];
    const imagesIndex = await blob('[]', '.json');
    const manifest = await blob(JSON.stringify({ shards: shards.map((imagesUri) => ({ imagesUri })), imagesIndexUri: imagesIndex }), '.json');
    const idxPixels = await blob('pixels', '.u8');
    const listing = (await store.putDirectory({ 'index.json': Buffer.from(JSON.stringify({ idxFiles: [{ pixelsUri: idxPixels }] })), 'part-000.json': Buffer.from('[]') })).uri;
    // A cache entry of kept shards and the record that points at it: kept; a cache entry of an unreachable shard: not.
    const cacheEntry = await store.putNamed('cache/preprocess/aa/kept.json', JSON.stringify({ shards: [{ imagesUri: shards[0] }, { imagesUri: shards[1] }] }));
    const record = await store.putNamed('preprocess/batch-outputs/bb/run/000000.json', JSON.stringify(cacheEntry));
    const orphanShard = await blob('orphan shard');
    const orphanCache = await store.putNamed('cache/preprocess/cc/orphan.json', JSON.stringify({ shards: [{ imagesUri: orphanShard }, { imagesUri: shards[0] }] }));
    // Unreachable: a blob, a model directory, a named artifact.
    const orphanBlob = await blob('orphan');
    const orphanModel = (await store.putDirectory({ 'model.json': Buffer.from('{}'), 'weights.bin': Buffer.from('w') })).uri;
    const orphanNamed = await store.putNamed('distillation/teacher-logits/dd/gone.json', '{}');
    // Staging left by killed writers.
    const staleScratch = await store.scratchFolder();
    writeFileSync(join(staleScratch, 'weights.bin'), 'half');
    const staleAtomic = `${store.pathOf(shards[0]!)}.tmp-4242-0a1b2c`;
    writeFileSync(staleAtomic, 'half');
    const staleNamed = `${store.pathOf(cacheEntry)}.tmp-4242-3d4e5f`;
    writeFileSync(staleNamed, 'half');
    // A checkpoint of an open run, named by its workflow ID.
    const checkpoint = await store.putNamed('checkpoints/train-open-1/latest.json', '{}');
    for (const top of readdirSync(store.root)) age(join(store.root, top), 30);

    // Recent artifacts, and what a recent manifest references although it is old itself, are kept.
    const oldShardOfRecent = await blob('old shard of a recent manifest');
    age(store.pathOf(oldShardOfRecent), 30);
    const recentManifest = await blob(JSON.stringify({ shards: [{ imagesUri: oldShardOfRecent }] }), '.json');
    const recentScratch = await store.scratchFolder();

    const plan = await planCollection(backend, {
      references: [key(manifest), key(`${listing}/index.json`)],
      openWorkflowIds: ['train-open-1'],
      keepModifiedSince: new Date(Date.now() - 7 * DAY),
    });
    const keys = (entries: StoredEntry[]) => entries.map((e) => e.key).sort();
    const relativeKey = (path: string) => path.slice(store.root.length + 1);
    assert.deepEqual(
      keys(plan.keep),
      [...shards, imagesIndex, manifest, idxPixels, listing, cacheEntry, record, checkpoint, oldShardOfRecent, recentManifest].map(key).concat(relativeKey(recentScratch)).sort(),
    );
    assert.deepEqual(
      keys(plan.remove),
      [orphanShard, orphanCache, orphanBlob, orphanModel, orphanNamed].map(key).concat([staleScratch, staleAtomic, staleNamed].map(relativeKey)).sort(),
    );
    assert.equal(plan.remove.find((e) => e.key === key(orphanModel))!.bytes, 3);

    for (const entry of plan.remove) await backend.remove(entry.key);
    for (const uri of [...shards, manifest, listing, cacheEntry, record, checkpoint, oldShardOfRecent]) assert.ok(await store.exists(uri), uri);
    for (const uri of [orphanShard, orphanCache, orphanBlob, orphanModel, orphanNamed]) assert.equal(await store.exists(uri), false, uri);
    for (const path of [staleScratch, staleAtomic, staleNamed]) assert.equal(existsSync(path), false, path);
    assert.equal(existsSync(join(store.root, 'distillation')), false, 'a named artifact\'s emptied folders go with it');
  });

  it('lists nothing and plans nothing for a store that was never written', async () => {
    const store = new LocalArtifactStore(join(mkdtempSync(join(tmpdir(), 'gc-')), 'never-written'));
    assert.deepEqual(await planCollection(new LocalGcBackend(store), { references: [], openWorkflowIds: [], keepModifiedSince: new Date() }), { keep: [], remove: [] });
  });
});
