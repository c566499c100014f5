import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { PreprocessDatasetResult } from '../workflows';
import { freePort, startTemporal, startWorkerProcess, temporaryDataDir, type WorkerProcess } from './helpers/temporal';
import { generateCertificates, grpcTlsServerBlock, nginxBinary, openSslInstalled, startTlsProxy, type TestCertificates, type TlsProxy } from './helpers/tls-proxy';

const run = promisify(execFile);
const cliMain = join(__dirname, '..', 'cli', 'main.js');
const demoMain = join(__dirname, '..', 'scripts', 'demo.js');
const skip = !nginxBinary ? 'nginx is not installed (scripts/provision-test-tools.sh installs it)' : !openSslInstalled ? 'openssl is not installed' : false;

/** stdout, stderr and exit code of a process that may fail. */
async function outcome(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(command, args, { env, timeout: 120_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
}

it('the README documents every TLS variable envconfig reads, and the nginx configuration this file runs', () => {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const envconfig = readFileSync(require.resolve('@temporalio/envconfig/lib/envconfig-toml.js'), 'utf8');
  const variables = new Set(envconfig.match(/TEMPORAL_TLS\w*/g));
  assert.ok(variables.size >= 9, `found ${[...variables].join(', ')}`);
  for (const variable of variables) assert.ok(readme.includes(`\`${variable}\``), `README does not name ${variable}`);
  const block = grpcTlsServerBlock({
    listen: '0.0.0.0:7234',
    upstream: '127.0.0.1:7233',
    serverCert: '/etc/temporal-tls/server.pem',
    serverKey: '/etc/temporal-tls/server.key',
    clientCaCert: '/etc/temporal-tls/ca.pem',
    http2Directive: false,
  });
  assert.ok(readme.includes(`\`\`\`nginx\n${block}\n\`\`\``), `README does not show:\n${block}`);
});

describe('Temporal over mutual TLS: worker, CLI and demo through a TLS-terminating gRPC proxy (real nginx, Temporal, worker processes)', { skip }, () => {
  let env: TestWorkflowEnvironment;
  let certs: TestCertificates;
  let proxy: TlsProxy;
  let dataDir: string;
  let worker: WorkerProcess | undefined;

  /** The connection settings of a client with the right CA and a client certificate, with `changes` applied (undefined removes one). */
  function tlsEnv(changes: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      TEMPORAL_ADDRESS: proxy.address,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
      TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
      TEMPORAL_ML_DATA_DIR: dataDir,
      ...changes,
    };
  }

  before(async () => {
    dataDir = temporaryDataDir();
    certs = generateCertificates();
    env = await startTemporal();
    proxy = await startTlsProxy(nginxBinary!, env.address, certs, { mutual: true });
  });

  after(async () => {
    await worker?.stop();
    await proxy?.stop();
    await env?.teardown();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('a worker process and the CLI, both with a client certificate, run preprocessDataset through the proxy', { timeout: 120_000 }, async () => {
    worker = await startWorkerProcess(proxy.address, dataDir, tlsEnv());
    assert.match(worker.output(), new RegExp(`Worker connected to ${proxy.address}`));
    const workflowId = `tls-preprocess-${Date.now()}`;
    const cli = await outcome(process.execPath, [cliMain, 'preprocess', JSON.stringify({ dataset: { source: 'builtin:mnist-digits', maxImages: 100 } }), '--id', workflowId], tlsEnv());
    assert.equal(cli.code, 0, `${cli.stderr}\n${worker.output()}\n${proxy.output()}`);
    const result = JSON.parse(cli.stdout.slice(cli.stdout.indexOf('{'))) as PreprocessDatasetResult;
    assert.equal(Object.values(result.counts).reduce((a, b) => a + b, 0), 100);
    // The server itself, reached directly, has the run the proxied clients started and completed.
    assert.equal((await env.client.workflow.getHandle(workflowId).describe()).status.name, 'COMPLETED');
    await worker.stop();
    worker = undefined;
  });

  it('the demo uses the server TEMPORAL_ADDRESS names: its client and worker connect through the proxy', { timeout: 180_000 }, async () => {
    const input = { dataset: { maxImages: 100 }, model: { architecture: 'mlp', hiddenUnits: [16] }, training: { epochs: 1 }, compression: null };
    const demo = await outcome(process.execPath, [demoMain, JSON.stringify(input)], tlsEnv({ METRICS_PORT: String(await freePort()), SDK_METRICS_PORT: '0' }));
    assert.equal(demo.code, 0, `${demo.stdout}\n${demo.stderr}`);
    assert.match(demo.stdout, new RegExp(`Using the Temporal server at ${proxy.address} over TLS`));
    assert.match(demo.stdout, new RegExp(`worker: Worker connected to ${proxy.address}`));
    assert.match(demo.stdout, /test accuracy +\d+\.\d+% on \d+ held-out images/);
  });

  it('refuses clients without a certificate or without TLS, and a client or worker that trusts another CA stops at once with a message naming the TLS variables', { timeout: 60_000 }, async () => {
    const noCertificate = tlsEnv({ TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined });
    const noTls = tlsEnv({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined });
    const otherCa = tlsEnv({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.unrelatedCaCert });
    const [withoutCertificate, withoutTls, cliTrustingOtherCa, workerTrustingOtherCa] = await Promise.all([
      outcome(process.execPath, [cliMain, 'watch', 'any-run'], noCertificate),
      outcome(process.execPath, [cliMain, 'watch', 'any-run'], noTls),
      outcome(process.execPath, [cliMain, 'watch', 'any-run'], otherCa),
      // No TEMPORAL_CONNECT_TIMEOUT_SECONDS: a certificate the worker rejects is not waited for as a server that is down is.
      startWorkerProcess(proxy.address, dataDir, { ...otherCa, TASK_QUEUES: 'ml-pipeline' }).then(
        (started) => started.stop().then(() => assert.fail('the worker connected while trusting another CA')),
        (err: Error) => err.message,
      ),
    ]);
    for (const failure of [withoutCertificate, withoutTls, cliTrustingOtherCa]) {
      assert.equal(failure.code, 1, failure.stderr);
      assert.match(failure.stderr, new RegExp(`^Cannot connect to Temporal at ${proxy.address} \\(TEMPORAL_ADDRESS\\) (over|without) TLS: `));
    }
    assert.match(withoutCertificate.stderr, /no client certificate is set: .*set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH/);
    assert.match(withoutTls.stderr, /without TLS: the server speaks TLS and this client does not: set TEMPORAL_TLS=true .*TEMPORAL_TLS_SERVER_CA_CERT_PATH/);
    for (const message of [cliTrustingOtherCa.stderr, workerTrustingOtherCa]) {
      assert.match(message, /the server's certificate is not signed by a CA this client trusts .*: TEMPORAL_TLS_SERVER_CA_CERT_PATH must name/);
      assert.ok(message.includes(`server CA certificate ${certs.unrelatedCaCert} (TEMPORAL_TLS_SERVER_CA_CERT_PATH)`), message);
      assert.ok(!message.includes(certs.clientKey), 'the key path is not shown');
    }
    for (const message of [withoutCertificate.stderr, withoutTls.stderr, cliTrustingOtherCa.stderr, workerTrustingOtherCa]) assert.doesNotMatch(message, /^\s+at /m, 'no stack trace');
  });
});
