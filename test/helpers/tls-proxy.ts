import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForPort } from '../../scripts/dev-server';
import { freePort } from './temporal';

/** Debian puts nginx in /usr/sbin, which is not on every user's PATH. */
export const nginxBinary: string | undefined = ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx'].find((candidate) => spawnSync(candidate, ['-v']).status === 0);

export const openSslInstalled = spawnSync('openssl', ['version']).status === 0;

export interface TestCertificates {
  dir: string;
  /** The CA that signed the server's and the client's certificates. */
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing here: trusting it instead of `caCert` must fail. */
  unrelatedCaCert: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function certificateAuthority(dir: string, name: string, commonName: string): void {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${commonName}`, '-keyout', `${name}.key`, '-out', `${name}.pem`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

function signedCertificate(dir: string, name: string, commonName: string, extensions: string[]): void {
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${commonName}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
  writeFileSync(join(dir, `${name}.ext`), ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', ...extensions].join('\n'));
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
}

/** A CA, a server certificate for localhost and 127.0.0.1, a client certificate signed by the same CA, and an unrelated CA. */
export function generateCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'temporal-ml-tls-'));
  certificateAuthority(dir, 'ca', 'temporal-ml test CA');
  certificateAuthority(dir, 'unrelated-ca', 'unrelated test CA');
  signedCertificate(dir, 'server', 'localhost', ['extendedKeyUsage=serverAuth', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  signedCertificate(dir, 'client', 'temporal-ml-worker', ['extendedKeyUsage=clientAuth']);
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
    unrelatedCaCert: join(dir, 'unrelated-ca.pem'),
  };
}

/** `http2 on` exists from nginx 1.25.1; older versions (Debian 12 ships 1.22) take `http2` on the listen line. */
function supportsHttp2Directive(nginx: string): boolean {
  const version = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr);
  if (!version) return false;
  const [major, minor, patch] = version.slice(1).map(Number) as [number, number, number];
  return major > 1 || (major === 1 && (minor > 25 || (minor === 25 && patch >= 1)));
}

export interface GrpcTlsServerBlock {
  listen: string;
  upstream: string;
  serverCert: string;
  serverKey: string;
  /** Given: clients must present a certificate this CA signed (mutual TLS). */
  clientCaCert?: string;
  http2Directive: boolean;
}

/** The `upstream` and `server` blocks that terminate (mutual) TLS and pass gRPC on to Temporal's frontend: the part of the config the README shows. */
export function grpcTlsServerBlock(block: GrpcTlsServerBlock): string {
  return `upstream temporal_frontend {
    server ${block.upstream};
    keepalive 16;
}
server {
    listen ${block.listen} ssl${block.http2Directive ? '' : ' http2'};${block.http2Directive ? '\n    http2 on;' : ''}
    ssl_certificate ${block.serverCert};
    ssl_certificate_key ${block.serverKey};${block.clientCaCert ? `
    ssl_client_certificate ${block.clientCaCert};
    ssl_verify_client on;` : ''}
    # Workers long-poll for tasks (about a minute per call) over a few connections that carry many calls.
    grpc_read_timeout 300s;
    grpc_send_timeout 300s;
    keepalive_requests 1000000;
    keepalive_timeout 1h;
    client_max_body_size 0;
    location / {
        grpc_pass grpc://temporal_frontend;
    }
}`;
}

export interface TlsProxy {
  /** `localhost:<port>`, for TEMPORAL_ADDRESS: a name, as clients should use over TLS (grpc-js warns when it sends an IP address as the TLS server name). */
  address: string;
  output: () => string;
  stop: () => Promise<void>;
}

/**
 * nginx in the foreground, as one process with a prefix of its own (so it needs no privileges, writes nothing outside
 * it and switches to no other user), terminating TLS on a free port and passing gRPC to `upstream`.
 */
export async function startTlsProxy(nginx: string, upstream: string, certs: TestCertificates, options: { mutual: boolean }): Promise<TlsProxy> {
  const port = await freePort();
  const prefix = mkdtempSync(join(tmpdir(), 'temporal-ml-nginx-'));
  mkdirSync(join(prefix, 'temp'));
  const server = grpcTlsServerBlock({
    listen: `127.0.0.1:${port}`,
    upstream,
    serverCert: certs.serverCert,
    serverKey: certs.serverKey,
    clientCaCert: options.mutual ? certs.caCert : undefined,
    http2Directive: supportsHttp2Directive(nginx),
  });
  const config = `daemon off;
master_process off;
pid ${join(prefix, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `    ${kind}_temp_path ${join(prefix, 'temp', kind)};`).join('\n')}
${server.replace(/^/gm, '    ')}
}
`;
  const configFile = join(prefix, 'nginx.conf');
  writeFileSync(configFile, config);
  const child: ChildProcess = spawn(nginx, ['-p', prefix, '-c', configFile, '-e', 'stderr'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = await Promise.race([waitForPort('127.0.0.1', port, 15_000).then(() => true, () => false), exited.then(() => false)]);
  if (!started) {
    child.kill('SIGKILL');
    rmSync(prefix, { recursive: true, force: true });
    throw new Error(`nginx did not listen on ${port}:\n${output}\n${config}`);
  }
  return {
    address: `localhost:${port}`,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
