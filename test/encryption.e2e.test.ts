import { Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../lib/encryption/codec';
import { dataConverterFromEnvironment } from '../lib/encryption/data-converter';
import { ensureTemporalCli } from '../scripts/temporal-cli';
import { startCodecServer } from '../workers/codec-server';
import { mlPipeline, type MlPipelineResult } from '../workflows';
import { startTemporal, startWorkerProcess, temporaryDataDir, type WorkerProcess } from './helpers/temporal';

/** A model name that appears nowhere but in the runs' input: the stored history must not hold it in clear. */
const MODEL = 'plaintext-canary-digits';
const INPUT = { modelName: MODEL, dataset: { maxImages: 300 }, batching: { size: 300 }, training: { epochs: 1 }, compression: null, retrain: 'if-changed' as const };

interface StoredPayload {
  path: string;
  metadata: Record<string, string>;
  text: string;
}

/** Every payload of a history as the server stores it, with where it sits. Search attributes are indexed, hence not encoded. */
function storedPayloads(value: unknown, path = ''): StoredPayload[] {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return [];
  const fields = value as Record<string, unknown>;
  if (fields.data instanceof Uint8Array && typeof fields.metadata === 'object') {
    const metadata = Object.fromEntries(Object.entries(fields.metadata as Record<string, Uint8Array>).map(([k, v]) => [k, Buffer.from(v).toString()]));
    return [{ path, metadata, text: Buffer.from(fields.data).toString('latin1') }];
  }
  return Object.entries(fields).flatMap(([key, child]) => (key === 'searchAttributes' ? [] : storedPayloads(child, `${path}.${key}`)));
}

/**
 * The environment of every child process `pid` starts while `work` runs, read from /proc while each child lives.
 * A child still between fork and exec runs the parent's command line and holds the parent's environment, not its own;
 * one in the middle of exec (or exiting) shows an empty command line and environment: either is read again later.
 */
async function childEnvironmentsDuring<T>(pid: number, work: Promise<T>): Promise<{ result: T; environments: Map<number, string> }> {
  const environments = new Map<number, string>();
  const parentCommand = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  const look = () => {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number)) {
      if (environments.has(child)) continue;
      try {
        const command = readFileSync(`/proc/${child}/cmdline`, 'utf8');
        if (command === '' || command === parentCommand) continue;
        environments.set(child, readFileSync(`/proc/${child}/environ`, 'utf8'));
      } catch {
        // It exited meanwhile.
      }
    }
  };
  const timer = setInterval(look, 50);
  try {
    return { result: await work, environments };
  } finally {
    clearInterval(timer);
  }
}

interface ShownPayload {
  metadata: { encoding: string };
  data: string;
}

/** The input payload of the run `temporal workflow show --output json` printed: its encoding, and its value when JSON. */
function startedInput(shown: string): { encoding: string; value?: unknown } {
  const find = (value: unknown): { input: { payloads: ShownPayload[] } } | undefined => {
    if (typeof value !== 'object' || value === null) return undefined;
    const fields = value as Record<string, unknown>;
    if (fields.workflowExecutionStartedEventAttributes) return fields.workflowExecutionStartedEventAttributes as ReturnType<typeof find>;
    for (const child of Object.values(fields)) {
      const started = find(child);
      if (started) return started;
    }
    return undefined;
  };
  const payload = find(JSON.parse(shown))!.input.payloads[0]!;
  const encoding = Buffer.from(payload.metadata.encoding, 'base64').toString();
  return encoding === 'json/plain' ? { encoding, value: JSON.parse(Buffer.from(payload.data, 'base64').toString()) } : { encoding };
}

function keyFile(dir: string, name: string, keys: { id: string; key: Buffer }[]): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(keys.map(({ id, key }) => ({ id, key: key.toString('base64') }))));
  return path;
}

describe('encrypted payloads, key rotation and secrets kept out of logs, results, metrics and children (real Temporal, worker processes, temporal CLI)', () => {
  let env: TestWorkflowEnvironment;
  let dataDir: string;
  let worker: WorkerProcess | undefined;
  const keyA = { id: 'key-a', key: randomBytes(32) };
  const keyB = { id: 'key-b', key: randomBytes(32) };
  let keysA: string;
  let keysAB: string;
  let firstRunId: string;

  before(async () => {
    env = await startTemporal();
    dataDir = temporaryDataDir();
    const secretsDir = mkdtempSync(join(tmpdir(), 'canary-secrets-'));
    keysA = keyFile(secretsDir, 'canary-keys-a.json', [keyA]);
    keysAB = keyFile(secretsDir, 'canary-keys-ab.json', [keyA, keyB]);
  });

  after(async () => {
    const exitCode = await worker?.stop();
    await env?.teardown();
    assert.equal(exitCode, 0, `worker should shut down cleanly on SIGTERM:\n${worker?.output()}`);
  });

  const clientWith = (keyFilePath: string) => new Client({ connection: env.connection, dataConverter: dataConverterFromEnvironment({ TEMPORAL_ML_ENCRYPTION_KEY_FILE: keyFilePath }) });

  /** The payloads of every history on the server, read by a client without the codec. */
  async function allStoredPayloads(): Promise<StoredPayload[]> {
    const payloads: StoredPayload[] = [];
    for await (const run of env.client.workflow.list()) {
      const history = await env.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      payloads.push(...storedPayloads(history.events, `${run.workflowId}`));
    }
    return payloads;
  }

  it('a worker refuses to start on a bad key file, saying which entry is wrong', async () => {
    const bad = keyFile(dataDir, 'short-key.json', [{ id: 'short', key: randomBytes(16) }]);
    await assert.rejects(startWorkerProcess(env.address, dataDir, { TEMPORAL_ML_ENCRYPTION_KEY_FILE: bad, TASK_QUEUES: 'ml-pipeline' }), /exited with code 1[\s\S]*entry 1 \(id "short"\): "key" decodes to 16 bytes; AES-256 needs 32/);
  });

  it('runs mlPipeline with every stored payload encrypted, and no secret in its logs, result, metrics or training child', async () => {
    const canaries = {
      TEMPORAL_ML_ENCRYPTION_KEY_FILE: keysA,
      TEMPORAL_API_KEY: 'canary-temporal-api-key',
      TEMPORAL_TLS: 'false',
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/canary/tls/client.pem',
      TEMPORAL_TLS_CLIENT_KEY_PATH: '/canary/tls/client.key',
      AWS_ACCESS_KEY_ID: 'AKIACANARYACCESSKEY',
      AWS_SECRET_ACCESS_KEY: 'canary-aws-secret-access-key',
      AWS_SESSION_TOKEN: 'canary-aws-session-token',
    };
    worker = await startWorkerProcess(env.address, dataDir, canaries);
    const handle = await clientWith(keysA).workflow.start(mlPipeline, { taskQueue: 'ml-pipeline', workflowId: `encrypted-${Date.now()}`, args: [INPUT] });
    firstRunId = handle.workflowId;
    const { result, environments } = await childEnvironmentsDuring(worker.process.pid!, handle.result());
    assert.equal(result.status, 'trained');
    assert.equal(result.modelName, MODEL);

    const stored = await allStoredPayloads();
    assert.ok(stored.length > 20, `${stored.length} payloads`);
    assert.deepEqual(stored.filter((p) => p.metadata.encoding !== ENCRYPTED_ENCODING || p.metadata[KEY_ID_METADATA] !== 'key-a').map((p) => `${p.path}: ${JSON.stringify(p.metadata)}`), []);
    assert.deepEqual(stored.filter((p) => p.text.includes(MODEL)).map((p) => p.path), []);

    const secrets = [...Object.entries(canaries).filter(([name]) => name !== 'TEMPORAL_TLS').map(([, value]) => value), readFileSync(keysA, 'utf8'), keyA.key.toString('base64')];
    assert.ok([...environments.values()].some((environ) => environ.includes('TEMPORAL_ML_DATA_DIR=')), `the training child's environment was read: ${environments.size} children seen`);
    const places: [string, string][] = [
      ['worker output', worker.output()],
      ['workflow result', JSON.stringify(result)],
      ['metrics', await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text()],
      ['SDK metrics', await (await fetch(`http://127.0.0.1:${worker.sdkMetricsPort}/metrics`)).text()],
      ...[...environments].map(([pid, environ]): [string, string] => [`environment of child ${pid}`, environ]),
    ];
    const leaks = places.flatMap(([place, text]) => secrets.filter((secret) => text.includes(secret)).map((secret) => `${secret} in ${place}`));
    assert.deepEqual(leaks, []);
  });

  it('after rotating to [A, B], old runs decode, new payloads carry B, and a reader without A is told the key id it lacks', async () => {
    assert.equal(await worker!.stop(), 0);
    worker = await startWorkerProcess(env.address, dataDir, { TEMPORAL_ML_ENCRYPTION_KEY_FILE: keysAB });
    const rotated = clientWith(keysAB);
    const old = rotated.workflow.getHandle<typeof mlPipeline>(firstRunId);
    const { events } = await old.fetchHistory();
    const oldInput = events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads!;
    assert.equal(Buffer.from(oldInput[0]!.metadata![KEY_ID_METADATA]!).toString(), 'key-a');
    assert.deepEqual(await decodeFromPayloadsAtIndex(rotated.options.loadedDataConverter, 0, oldInput), INPUT);
    assert.equal((await old.result()).status, 'trained');

    // The same data and configuration: the registry (opened under key A) answers under key B that nothing changed.
    const again = await rotated.workflow.start(mlPipeline, { taskQueue: 'ml-pipeline', workflowId: `rotated-${Date.now()}`, args: [INPUT] });
    const result: MlPipelineResult = await again.result();
    assert.equal(result.status, 'unchanged');
    const { events: newEvents } = await again.fetchHistory();
    const newPayloads = storedPayloads(newEvents);
    assert.ok(newPayloads.length > 3);
    assert.deepEqual(newPayloads.filter((p) => p.metadata[KEY_ID_METADATA] !== 'key-b').map((p) => p.path), []);

    await assert.rejects(clientWith(keyFile(dataDir, 'only-b.json', [keyB])).workflow.getHandle(firstRunId).result(), /key id "key-a", which the key file does not hold \(it holds "key-b"\)/);
  });

  it('the temporal CLI shows the input through the codec server, and only ciphertext without it', async () => {
    const server = await startCodecServer(new AesGcmCodec([keyA, keyB]), { host: '127.0.0.1', port: 0, allowedOrigins: [] });
    try {
      // Asynchronously: the codec server answers from this process.
      const show = async (...extra: string[]) =>
        (await promisify(execFile)(ensureTemporalCli(), ['workflow', 'show', '--address', env.address, '--workflow-id', firstRunId, '--output', 'json', ...extra], { encoding: 'utf8' })).stdout;
      const [raw, decoded] = await Promise.all([show(), show('--codec-endpoint', `http://127.0.0.1:${(server.address() as AddressInfo).port}`)]);
      assert.equal(startedInput(raw).encoding, ENCRYPTED_ENCODING);
      assert.deepEqual(startedInput(decoded), { encoding: 'json/plain', value: INPUT });
    } finally {
      server.close();
    }
  });
});
