import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listS3ImageFolder, s3Reader } from '../lib/datasets/s3-folder';
import { ArtifactNotFoundError, LocalArtifactStore, openArtifactStore, readJsonIfStored, type S3StoreDescription } from '../lib/artifacts';
import { ArtifactCorruptError, S3ArtifactStore, parseS3Url } from '../lib/s3-artifacts';
import { startTestObjectStore } from './helpers/object-store';

type TestObjectStore = Awaited<ReturnType<typeof startTestObjectStore>>;

describe('S3 artifact store (real versitygw server)', () => {
  let server: TestObjectStore;
  let bucketDir: string;
  let prefix = 0;

  before(async () => {
    server = await startTestObjectStore();
    bucketDir = join(server.dataDir, server.bucket);
  });
  after(() => server?.stop());

  /** A store on its own prefix of the bucket, with its own (empty) cache: as on another machine. */
  function newStore(options: { prefix?: string; cacheBytes?: number } = {}): S3ArtifactStore {
    const env = server.env(options.prefix ?? `t${prefix++}`);
    return new S3ArtifactStore({
      kind: 's3',
      ...parseS3Url(env.TEMPORAL_ML_ARTIFACT_URL!),
      endpoint: env.AWS_ENDPOINT_URL_S3,
      region: env.AWS_REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
      cacheDir: mkdtempSync(join(tmpdir(), 'artifact-cache-')),
      cacheBytes: options.cacheBytes ?? 1 << 30,
    });
  }
  const objectPath = (store: S3ArtifactStore, uri: string) => join(bucketDir, store.locationOf(uri).slice(`s3://${server.bucket}/`.length));

  it('stores blobs and directories at the same URIs as the local store, and reads them back', async () => {
    const store = newStore();
    const local = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'artifacts-')));
    const blob = Buffer.from('shard bytes '.repeat(100));
    const files = { 'model.json': Buffer.from('{"format":"layers-model"}'), 'weights.bin': randomBytes(4096) };
    const [stored, dir] = [await store.putBlob(blob, '.npy'), await store.putDirectory(files)];
    assert.deepEqual(stored, await local.putBlob(blob, '.npy'));
    assert.deepEqual(dir, await local.putDirectory(files));
    assert.match(stored.uri, /^artifact:\/\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\.npy$/);

    const elsewhere = newStore({ prefix: store.locationOf('artifact://x').split('/')[3] });
    assert.ok((await elsewhere.read(stored.uri)).equals(blob));
    assert.deepEqual(await elsewhere.readDirectory(dir.uri), files);
    assert.ok((await elsewhere.read(`${dir.uri}/model.json`)).equals(files['model.json']));
    assert.ok(readFileSync(join(await elsewhere.localPath(dir.uri), 'weights.bin')).equals(files['weights.bin']));
    assert.equal(await elsewhere.exists(dir.uri), true);
    assert.equal(await elsewhere.exists('artifact://nothing/here'), false);

    const named = await store.putNamed('runs/a/manifest.json', '{"v":1}');
    assert.equal(named, 'artifact://runs/a/manifest.json');
    assert.deepEqual(await elsewhere.readJson(named), { v: 1 });
    await store.putNamed('runs/a/manifest.json', '{"v":2}');
    assert.deepEqual(await elsewhere.readJson(named), { v: 2 }, 'a replaced named artifact is read anew');
    assert.equal(store.locationOf(named), `s3://${server.bucket}/${store.locationOf(named).split('/').slice(3).join('/')}`);
  });

  it('reads a named JSON artifact in one request, or says nothing is stored there, on both stores', async () => {
    const store = newStore();
    const requests: string[] = [];
    store.client.middlewareStack.add((next) => (args) => (requests.push((args.input as { Key: string }).Key), next(args)), { step: 'initialize', name: 'countRequests' });
    for (const backend of [store, new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'artifacts-')))]) {
      assert.equal(await readJsonIfStored(backend, 'records/none.json'), undefined);
      await backend.putNamed('records/one.json', '{"uri":"artifact://x"}');
      assert.deepEqual(await readJsonIfStored(backend, 'records/one.json'), { uri: 'artifact://x' });
      await backend.putNamed('records/bad.json', '{"uri":');
      await assert.rejects(readJsonIfStored(backend, 'records/bad.json'), SyntaxError);
    }
    assert.deepEqual(requests.filter((key) => key.endsWith('none.json') || key.includes('none.json/')), [store.locationOf('artifact://records/none.json').split('/').slice(3).join('/')]);
  });

  it('keeps connections to the development object store alive between requests, as S3 does', async () => {
    const agent = new Agent({ keepAlive: true });
    const reused: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const request = httpRequest(`${server.env().AWS_ENDPOINT_URL_S3}/${server.bucket}/no-such-key`, { agent, method: 'HEAD' }, (response) => {
          reused.push(request.reusedSocket);
          response.resume().on('end', resolve);
        });
        request.on('error', reject).end();
      });
    }
    agent.destroy();
    assert.deepEqual(reused, [false, true, true]);
  });

  it('shows a directory only once its listing, written last, is there', async () => {
    const store = newStore();
    const dir = await store.putDirectory({ 'a.bin': Buffer.from('a'), 'b.bin': Buffer.from('b') });
    rmSync(join(objectPath(store, dir.uri), '.directory.json'));
    const reader = newStore({ prefix: store.locationOf('artifact://x').split('/')[3] });
    assert.equal(await reader.exists(dir.uri), false);
    await assert.rejects(reader.readDirectory(dir.uri), ArtifactNotFoundError);
    assert.deepEqual(await store.putDirectory({ 'a.bin': Buffer.from('a'), 'b.bin': Buffer.from('b') }), dir, 'the next put completes it');
    assert.equal(Object.keys(await reader.readDirectory(dir.uri)).length, 2);
  });

  it('lets concurrent writers of the same content both succeed, storing one object', async () => {
    const name = `race${prefix}`;
    const [a, b] = [newStore({ prefix: name }), newStore({ prefix: name })];
    const data = randomBytes(256 * 1024);
    const [first, second] = await Promise.all([a.putBlob(data, '.bin'), b.putBlob(data, '.bin')]);
    assert.deepEqual(first, second);
    const listed = await a.client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${name}/` }));
    assert.deepEqual(listed.Contents?.map((object) => object.Key), [`${name}/sha256/${first.sha256.slice(0, 2)}/${first.sha256}.bin`]);
  });

  it('verifies the sha256 of what it reads: a damaged object is refused, and the next put repairs it', async () => {
    const store = newStore();
    const data = Buffer.from('bytes that matter '.repeat(1000));
    const { uri } = await store.putBlob(data, '.bin');
    const path = objectPath(store, uri);
    const bytes = readFileSync(path);
    bytes[500] = bytes[500]! ^ 0xff;
    writeFileSync(path, bytes);
    const reader = newStore({ prefix: store.locationOf('artifact://x').split('/')[3] });
    await assert.rejects(reader.read(uri), ArtifactCorruptError);
    assert.equal(await reader.isIntactBlob(uri), false);
    await reader.putBlob(data, '.bin');
    assert.ok((await reader.read(uri)).equals(data));
  });

  it('keeps its local cache within its size bound, least recently used out, and serves hits without the server', async () => {
    const blobBytes = 100_000;
    const writer = newStore();
    const uris = [];
    for (let i = 0; i < 4; i++) uris.push((await writer.putBlob(randomBytes(blobBytes), '.bin')).uri);
    const reader = newStore({ prefix: writer.locationOf('artifact://x').split('/')[3], cacheBytes: 2.5 * blobBytes });
    await reader.read(uris[0]!);
    await reader.read(uris[1]!);
    await reader.read(uris[0]!); // now uris[1] is the least recently used
    await new Promise((resolve) => setTimeout(resolve, 20));
    await reader.read(uris[2]!);
    const cached = await reader.cache.entries();
    assert.ok(cached.reduce((sum, entry) => sum + entry.bytes, 0) <= 2.5 * blobBytes, 'within the bound');
    assert.deepEqual(cached.map((entry) => entry.name).sort(), [uris[0], uris[2]].map((uri) => uri!.split('/').pop()).sort(), 'the least recently used went');

    for (const uri of uris) rmSync(objectPath(writer, uri));
    assert.equal((await reader.read(uris[0]!)).byteLength, blobBytes, 'a hit needs no download');
    await assert.rejects(reader.read(uris[1]!), ArtifactNotFoundError, 'an evicted entry is downloaded again');
  });

  it('streams a large object both ways in bounded memory', async () => {
    const store = newStore();
    const file = join(mkdtempSync(join(tmpdir(), 'large-')), 'shard.npy');
    const bytes = 48 * 1024 * 1024;
    const chunk = randomBytes(1024 * 1024);
    writeFileSync(file, Buffer.concat(Array.from({ length: bytes / chunk.byteLength }, () => chunk)));
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 2);
    try {
      const stored = await store.putBlobFile(file, '.npy');
      assert.equal(stored.bytes, bytes);
      const description = (await store.describeForChild()) as S3StoreDescription;
      const reader = openArtifactStore({ ...description, cacheDir: mkdtempSync(join(tmpdir(), 'artifact-cache-')) });
      const path = await reader.localPath(stored.uri);
      assert.equal(readFileSync(path).byteLength, bytes);
    } finally {
      clearInterval(sampler);
    }
    const held = peak - baseline;
    assert.ok(held < bytes / 2, `held ${(held / 2 ** 20).toFixed(1)} MiB of buffers moving ${bytes / 2 ** 20} MiB`);
  });

  it('a process opens one store, and one S3 client, per description it is handed, task after task', async () => {
    const store = newStore();
    const description = (await store.describeForChild()) as S3StoreDescription;
    const first = openArtifactStore({ ...description }) as S3ArtifactStore;
    const second = openArtifactStore(JSON.parse(JSON.stringify(description)) as S3StoreDescription) as S3ArtifactStore;
    assert.equal(second, first);
    const { uri } = await first.putBlob(Buffer.from('shared'), '.txt');
    assert.equal((await second.read(uri)).toString(), 'shared');
    const elsewhere = openArtifactStore({ ...description, cacheDir: mkdtempSync(join(tmpdir(), 'artifact-cache-')) }) as S3ArtifactStore;
    assert.notEqual(elsewhere.client, first.client, 'another description, another store');
  });

  it('lists a dataset prefix as class folders and reads its objects under the same quarantine rules as files', async () => {
    const store = newStore();
    const put = (key: string, body: Buffer) => store.client.send(new PutObjectCommand({ Bucket: server.bucket, Key: `datasets/toy/${key}`, Body: body }));
    const image = randomBytes(300);
    await Promise.all([put('cat/1.png', image), put('cat/empty.png', Buffer.alloc(0)), put('dog/deep/big.png', randomBytes(2000)), put('dog/gone.png', image), put('.hidden/x.png', image), put('cat/.DS_Store', image)]);
    const listing = await listS3ImageFolder(store.client, server.bucket, 'datasets/toy');
    assert.deepEqual(listing.classes, ['cat', 'dog']);
    assert.deepEqual(listing.perClass.map((images) => images.map((i) => i.path)), [['cat/1.png', 'cat/empty.png'], ['dog/deep/big.png', 'dog/gone.png']]);

    await store.client.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: 'datasets/toy/dog/gone.png' }));
    const read = await s3Reader(store.client, server.bucket, 'datasets/toy', 1000).read(listing.perClass.flat(), Infinity);
    assert.deepEqual(read[0], { ok: true, input: image, sha256: createHash('sha256').update(image).digest('hex'), bytes: 300 });
    assert.deepEqual(read.slice(1).map((outcome) => (outcome.ok ? 'ok' : outcome.reason)), ['empty', 'too_large', 'unreadable']);

    await assert.rejects(listS3ImageFolder(store.client, server.bucket, 'datasets/toy/cat'), /toy\/cat has no class prefixes .*found 2 objects directly under it/);
  });
});
