import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { TemporalConnectionError, TLS_FILE_SETTINGS, type TemporalConnectConfig } from './connection';

/** What a TLS handshake of our own finds at the server's address. */
type Handshake =
  | { outcome: 'completed' }
  | { outcome: 'unreachable'; reason: string }
  | { outcome: 'failed'; reason: string; code?: string };

/** Errors that say nothing listens (yet) at the address: worth waiting for, unlike a certificate the client rejects. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/** The server's certificate chain does not lead to a CA the client trusts. */
const UNTRUSTED = new Set(['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE']);

function hostAndPort(address: string): { host: string; port: number } {
  const match = /^\[?(.+?)\]?:(\d+)$/.exec(address);
  return match ? { host: match[1]!, port: Number(match[2]) } : { host: address, port: 7233 };
}

/**
 * A handshake with the client's TLS settings; for a client without TLS, one that verifies nothing, only to learn
 * whether the server speaks TLS.
 */
function tlsHandshake(config: TemporalConnectConfig): Promise<Handshake> {
  const tls = config.connectionOptions.tls;
  const options = typeof tls === 'object' && tls ? tls : {};
  const bytes = (data: Uint8Array | undefined) => (data ? Buffer.from(data) : undefined);
  const { host, port } = hostAndPort(config.connectionOptions.address);
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port,
      servername: options.serverNameOverride ?? (isIP(host) ? undefined : host),
      ca: bytes(options.serverRootCACertificate),
      cert: bytes(options.clientCertPair?.crt),
      key: bytes(options.clientCertPair?.key),
      rejectUnauthorized: Boolean(tls),
      ALPNProtocols: ['h2'],
    });
    const done = (handshake: Handshake) => {
      socket.destroy();
      resolve(handshake);
    };
    socket.setTimeout(5000, () => done({ outcome: 'unreachable', reason: 'no answer within 5 s' }));
    socket.once('secureConnect', () => done({ outcome: 'completed' }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(err.code && UNREACHABLE.has(err.code) ? { outcome: 'unreachable', reason: err.message } : { outcome: 'failed', reason: readableReason(err), code: err.code }),
    );
  });
}

/** OpenSSL's own errors come as several lines of library detail: their code says it better. */
function readableReason(err: NodeJS.ErrnoException): string {
  return err.code?.startsWith('ERR_SSL_') ? err.code : err.message.split('\n')[0]!;
}

/** Where each TLS setting came from, by the variable that sets it; the key's path is not shown. */
function tlsSettings(config: TemporalConnectConfig): string {
  const tls = config.profile.tls ?? {};
  const files = TLS_FILE_SETTINGS.map(({ key, what, variable }) => {
    const source = tls[key];
    const value = !source ? 'not set' : !('path' in source) ? 'given inline' : key === 'clientKey' ? 'set' : source.path;
    return `${what} ${value} (${variable})`;
  });
  return [...files, `server name ${tls.serverName ?? "the address's host"} (TEMPORAL_TLS_SERVER_NAME)`].join(', ');
}

function hasClientCertificate(config: TemporalConnectConfig): boolean {
  const tls = config.connectionOptions.tls;
  return typeof tls === 'object' && tls?.clientCertPair !== undefined;
}

const CLIENT_CERTIFICATE_HINT = 'if the server requires client certificates (mutual TLS), TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH must name a certificate signed by a CA it trusts, and its key';

/** What to change, given what our own handshake found. */
function hint(config: TemporalConnectConfig, handshake: Handshake): string {
  const tls = config.connectionOptions.tls;
  if (handshake.outcome === 'unreachable') return `nothing answers there (${handshake.reason}): start the server, or point TEMPORAL_ADDRESS at it`;
  if (!tls) {
    return handshake.outcome === 'completed'
      ? 'the server speaks TLS and this client does not: set TEMPORAL_TLS=true if a public CA signed its certificate, else TEMPORAL_TLS_SERVER_CA_CERT_PATH ' +
          '(and, for mutual TLS, TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)'
      : "the server answers, but the call fails (the client's error below)";
  }
  if (handshake.outcome === 'failed') {
    const serverName = (typeof tls === 'object' && tls.serverNameOverride) || hostAndPort(config.connectionOptions.address).host;
    if (handshake.code && UNTRUSTED.has(handshake.code)) {
      return `the server's certificate is not signed by a CA this client trusts (${handshake.reason}): TEMPORAL_TLS_SERVER_CA_CERT_PATH must name the certificate of the CA that signed the server's certificate`;
    }
    if (handshake.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the server's certificate does not name ${serverName} (${handshake.reason}): connect by a name it holds, or set TEMPORAL_TLS_SERVER_NAME to one`;
    if (handshake.code === 'ERR_SSL_WRONG_VERSION_NUMBER') return `the server does not speak TLS there (${handshake.reason}): point TEMPORAL_ADDRESS at its TLS endpoint, or turn TLS off (TEMPORAL_TLS=false) for a server without it`;
    if (handshake.code === 'CERT_HAS_EXPIRED' || handshake.code === 'CERT_NOT_YET_VALID') return `the server's certificate is not valid now (${handshake.reason})`;
    return `the TLS handshake fails (${handshake.reason}): ${CLIENT_CERTIFICATE_HINT}`;
  }
  if (!hasClientCertificate(config)) return 'the TLS handshake succeeds but the server refuses the calls, and no client certificate is set: a server that requires mutual TLS refuses such connections; set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH';
  return `the TLS handshake succeeds but the server refuses the calls: ${CLIENT_CERTIFICATE_HINT}`;
}

/** A failure that waiting for the server cannot mend: a handshake the client's TLS settings fail, or a TLS server the client talks to without TLS. */
function isDefinite(config: TemporalConnectConfig, handshake: Handshake): boolean {
  return handshake.outcome === (config.connectionOptions.tls ? 'failed' : 'completed');
}

function reasonOf(err: unknown): string {
  const messages: string[] = [];
  for (let current: unknown = err; current instanceof Error; current = current.cause) messages.push(current.message.split('\n')[0]!);
  return messages.length ? messages.join(': ') : String(err);
}

/** A failed connection (`err`: the client's error, if it gave up) as one message that names the address, the TLS variables in effect and what to change. */
async function explainConnectionFailure(err: unknown, config: TemporalConnectConfig, handshake?: Handshake): Promise<TemporalConnectionError> {
  const { address, tls } = config.connectionOptions;
  const found = handshake ?? (await tlsHandshake(config));
  return new TemporalConnectionError(
    `Cannot connect to Temporal at ${address} (TEMPORAL_ADDRESS) ${tls ? 'over' : 'without'} TLS: ${hint(config, found)}.` +
      (err === undefined ? '' : `\n  The client's error: ${reasonOf(err)}`) +
      (tls ? `\n  TLS settings: ${tlsSettings(config)}` : ''),
    !isDefinite(config, found),
  );
}

/**
 * Runs `connect` and turns its failure into an explained {@link TemporalConnectionError}. A connection still trying
 * after a second is checked with a TLS handshake of our own: the gRPC client retries a certificate it rejects (or a
 * TLS server it talks to without TLS) until its deadline without saying why, and our handshake does say why.
 */
export async function connectExplained<T>(config: TemporalConnectConfig, connect: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const definiteFailure = new Promise<Handshake>((resolve) => {
    timer = setTimeout(() => void tlsHandshake(config).then(resolve), 1000).unref();
  }).then((handshake) => (isDefinite(config, handshake) ? { handshake } : new Promise<never>(() => {})));
  const outcome = await Promise.race([connect().then((connection) => ({ connection }), (error: unknown) => ({ error })), definiteFailure]);
  clearTimeout(timer);
  if ('connection' in outcome) return outcome.connection;
  throw 'handshake' in outcome ? await explainConnectionFailure(undefined, config, outcome.handshake) : await explainConnectionFailure(outcome.error, config);
}
