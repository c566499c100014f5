import { defaultPayloadConverter } from '@temporalio/common';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { codecServerSettings } from '../lib/config';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../lib/encryption/codec';
import { dataConverterFromEnvironment } from '../lib/encryption/data-converter';
import { parseKeyFile, type EncryptionKey } from '../lib/encryption/key-file';
import { isSecretVariable } from '../lib/secrets';
import { startCodecServer } from '../workers/codec-server';

const keyA: EncryptionKey = { id: 'key-a', key: randomBytes(32) };
const keyB: EncryptionKey = { id: 'key-b', key: randomBytes(32) };
const INPUT = { modelName: 'plaintext-canary', training: { epochs: 1 } };

function keyFile(...keys: EncryptionKey[]): string {
  return JSON.stringify(keys.map(({ id, key }) => ({ id, key: key.toString('base64') })));
}

describe('key files', () => {
  it('hold a list of ids and base64 32-byte keys; the last one is the newest', () => {
    assert.deepEqual(parseKeyFile(keyFile(keyA, keyB), 'keys.json'), [keyA, keyB]);
  });

  for (const [what, text, message] of [
    ['empty', '', /keys\.json is not JSON/],
    ['an empty list', '[]', /non-empty JSON list/],
    ['not a list', '{"id": "a", "key": "x"}', /non-empty JSON list/],
    ['a key of the wrong length', JSON.stringify([{ id: 'short', key: randomBytes(16).toString('base64') }]), /entry 1 \(id "short"\): "key" decodes to 16 bytes; AES-256 needs 32/],
    ['a key that is not base64', JSON.stringify([{ id: 'bad', key: '***not base64***' }]), /entry 1 \(id "bad"\): "key" is not base64/],
    ['an entry without an id', JSON.stringify([{ key: keyA.key.toString('base64') }]), /entry 1: "id" must be/],
    ['one id twice', `[${keyFile(keyA).slice(1, -1)},${keyFile(keyA).slice(1, -1)}]`, /entry 2: the id "key-a" appears twice/],
  ] as const) {
    it(`are refused when ${what}, naming the entry and never the key`, () => {
      assert.throws(() => parseKeyFile(text, 'keys.json'), (err: Error) => {
        assert.equal(err.name, 'KeyFileError');
        assert.match(err.message, message);
        assert.ok(!err.message.includes(keyA.key.toString('base64')));
        return true;
      });
    });
  }

  it('a process fails at startup on a bad or missing file named by TEMPORAL_ML_ENCRYPTION_KEY_FILE, and encrypts nothing without one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    writeFileSync(join(dir, 'short.json'), JSON.stringify([{ id: 'a', key: randomBytes(31).toString('base64') }]));
    assert.throws(() => dataConverterFromEnvironment({ TEMPORAL_ML_ENCRYPTION_KEY_FILE: join(dir, 'short.json') }), /TEMPORAL_ML_ENCRYPTION_KEY_FILE, entry 1 \(id "a"\): "key" decodes to 31 bytes/);
    assert.throws(() => dataConverterFromEnvironment({ TEMPORAL_ML_ENCRYPTION_KEY_FILE: join(dir, 'missing.json') }), /TEMPORAL_ML_ENCRYPTION_KEY_FILE: cannot read the key file \(ENOENT\)/);
    assert.equal(dataConverterFromEnvironment({}), undefined);
  });
});

describe('the AES-256-GCM payload codec', () => {
  const payload = defaultPayloadConverter.toPayload(INPUT);

  it('stores neither the value nor its encoding in clear, and names the key in the metadata', async () => {
    const [encrypted] = await new AesGcmCodec([keyA, keyB]).encode([payload]);
    assert.deepEqual(Object.keys(encrypted!.metadata!).sort(), ['encoding', KEY_ID_METADATA]);
    assert.equal(Buffer.from(encrypted!.metadata!.encoding!).toString(), ENCRYPTED_ENCODING);
    assert.equal(Buffer.from(encrypted!.metadata![KEY_ID_METADATA]!).toString(), 'key-b');
    const stored = Buffer.from(encrypted!.data!).toString('latin1');
    assert.ok(!stored.includes('plaintext-canary') && !stored.includes('json/plain'));
  });

  it('decrypts with any key of the file, so rotation keeps old payloads readable', async () => {
    const [old] = await new AesGcmCodec([keyA]).encode([payload]);
    const [decoded] = await new AesGcmCodec([keyA, keyB]).decode([old!]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(decoded!), INPUT);
  });

  it('fails on a key id it does not hold, naming the id, and on an altered payload', async () => {
    const [old] = await new AesGcmCodec([keyA]).encode([payload]);
    await assert.rejects(new AesGcmCodec([keyB]).decode([old!]), /payload encrypted with key id "key-a", which the key file does not hold \(it holds "key-b"\)/);
    const altered = { ...old!, data: Buffer.from(old!.data!).map((byte, i) => (i === 20 ? byte ^ 1 : byte)) };
    await assert.rejects(new AesGcmCodec([keyA]).decode([altered]), /key id "key-a" does not decrypt with that key/);
  });

  it('passes payloads that are not encrypted through (runs from before encryption was turned on)', async () => {
    assert.deepEqual(await new AesGcmCodec([keyA]).decode([payload]), [payload]);
  });
});

describe('the codec server', () => {
  const origin = 'http://localhost:8233';
  let base: string;
  let close: () => void;

  before(async () => {
    const server = await startCodecServer(new AesGcmCodec([keyA]), { host: '127.0.0.1', port: 0, allowedOrigins: [origin] });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => server.close();
  });
  after(() => close());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });

  it('binds 127.0.0.1 and allows only the dev server’s Web UI unless configured', () => {
    const saved = { ...process.env };
    try {
      for (const name of ['CODEC_SERVER_HOST', 'CODEC_SERVER_PORT', 'CODEC_SERVER_ALLOWED_ORIGINS']) delete process.env[name];
      assert.deepEqual(codecServerSettings(), { host: '127.0.0.1', port: 8888, allowedOrigins: ['http://localhost:8233'] });
      Object.assign(process.env, { CODEC_SERVER_HOST: '0.0.0.0', CODEC_SERVER_PORT: '9000', CODEC_SERVER_ALLOWED_ORIGINS: 'https://ui.example, http://localhost:8080' });
      assert.deepEqual(codecServerSettings(), { host: '0.0.0.0', port: 9000, allowedOrigins: ['https://ui.example', 'http://localhost:8080'] });
    } finally {
      process.env = saved;
    }
  });

  it('encodes and decodes {payloads} in Temporal’s JSON form', async () => {
    const plain = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from(JSON.stringify(INPUT)).toString('base64') };
    const encoded = await post('/encode', { payloads: [plain] });
    assert.equal(encoded.status, 200);
    const { payloads } = (await encoded.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    assert.equal(Buffer.from(payloads[0]!.metadata[KEY_ID_METADATA]!, 'base64').toString(), 'key-a');
    assert.ok(!Buffer.from(payloads[0]!.data, 'base64').toString('latin1').includes('plaintext-canary'));
    const decoded = await post('/decode', { payloads });
    assert.deepEqual(await decoded.json(), { payloads: [plain] });
  });

  it('answers the Web UI’s origin with CORS headers, and refuses other origins', async () => {
    const preflight = await fetch(`${base}/decode`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), origin);
    assert.match(preflight.headers.get('access-control-allow-headers')!, /X-Namespace/);
    const allowed = await post('/decode', { payloads: [] }, { Origin: origin });
    assert.equal(allowed.headers.get('access-control-allow-origin'), origin);
    for (const request of [post('/decode', { payloads: [] }, { Origin: 'http://evil.example' }), fetch(`${base}/decode`, { method: 'OPTIONS', headers: { Origin: 'http://evil.example' } })]) {
      const refused = await request;
      assert.equal(refused.status, 403);
      assert.equal(refused.headers.get('access-control-allow-origin'), null);
    }
  });

  it('says what is wrong with a bad request, and names a key id it does not hold', async () => {
    assert.match(await (await post('/decode', { nothing: true })).text(), /must be \{"payloads": \[\.\.\.\]\}/);
    const [foreign] = await new AesGcmCodec([keyB]).encode([defaultPayloadConverter.toPayload(INPUT)]);
    const json = { metadata: Object.fromEntries(Object.entries(foreign!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(foreign!.data!).toString('base64') };
    const response = await post('/decode', { payloads: [json] });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /key id "key-b"/);
  });
});

describe('secrets', () => {
  it('are the connection settings, the key file and anything named like a credential, never project settings', () => {
    const secret = ['TEMPORAL_API_KEY', 'TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_CLIENT_CERT_DATA', 'TEMPORAL_CONFIG_FILE', 'TEMPORAL_ML_ENCRYPTION_KEY_FILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'DB_PASSWORD'];
    const notSecret = ['TEMPORAL_ML_DATA_DIR', 'TEMPORAL_ML_WARM_CHILD_CACHE_MB', 'TF_NUM_INTRAOP_THREADS', 'PATH', 'HOME', 'AWS_REGION'];
    assert.deepEqual(secret.filter((name) => !isSecretVariable(name)), []);
    assert.deepEqual(notSecret.filter(isSecretVariable), []);
  });
});
