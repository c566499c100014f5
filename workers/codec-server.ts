import type { Payload, PayloadCodec } from '@temporalio/common';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * Temporal's remote codec protocol, for the Web UI and `temporal --codec-endpoint`: POST /encode and /decode with
 * `{"payloads": [...]}`, payloads as protobuf JSON (metadata values and data in base64). Browsers are answered only
 * from `allowedOrigins`; clients that send no Origin (the `temporal` CLI) are answered as well.
 */
export interface CodecServerOptions {
  host: string;
  port: number;
  allowedOrigins: string[];
}

interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

/** Larger bodies are refused unread: Temporal's own payload limit is a few MB. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

class BadRequest extends Error {}

function fromJson(payload: JsonPayload): Payload {
  if (typeof payload !== 'object' || payload === null) throw new BadRequest('each entry of "payloads" must be an object');
  const metadata = Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, Buffer.from(String(value), 'base64')]));
  return { metadata, data: Buffer.from(payload.data ?? '', 'base64') };
}

function toJson(payload: Payload): JsonPayload {
  const metadata = Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, Buffer.from(value).toString('base64')]));
  return { metadata, data: Buffer.from(payload.data ?? []).toString('base64') };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BadRequest(`request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function corsHeaders(origin: string): Record<string, string> {
  return {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Allow-Methods': 'POST, OPTIONS',
    'Access-Control-Allow-Headers': 'Content-Type, X-Namespace, Authorization',
    'Access-Control-Allow-Credentials': 'true',
    Vary: 'Origin',
  };
}

async function handle(codec: PayloadCodec, allowedOrigins: string[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const origin = req.headers.origin;
  if (origin !== undefined && !allowedOrigins.includes(origin)) {
    res.writeHead(403, { 'Content-Type': 'text/plain' }).end(`origin ${origin} is not allowed (CODEC_SERVER_ALLOWED_ORIGINS)\n`);
    return;
  }
  const headers = origin === undefined ? {} : corsHeaders(origin);
  if (req.method === 'OPTIONS') {
    res.writeHead(204, headers).end();
    return;
  }
  const operation = req.url === '/encode' ? 'encode' : req.url === '/decode' ? 'decode' : undefined;
  if (req.method !== 'POST' || !operation) {
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('POST /encode or /decode\n');
    return;
  }
  try {
    let body: { payloads?: unknown };
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      throw err instanceof BadRequest ? err : new BadRequest('the body is not JSON');
    }
    if (!Array.isArray(body?.payloads)) throw new BadRequest('the body must be {"payloads": [...]}');
    const payloads = await codec[operation](body.payloads.map(fromJson));
    res.writeHead(200, { ...headers, 'Content-Type': 'application/json' }).end(JSON.stringify({ payloads: payloads.map(toJson) }));
  } catch (err) {
    res.writeHead(400, { ...headers, 'Content-Type': 'text/plain' }).end(`${(err as Error).message}\n`);
  }
}

export async function startCodecServer(codec: PayloadCodec, options: CodecServerOptions): Promise<Server> {
  const server = createServer((req, res) => void handle(codec, options.allowedOrigins, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  return server;
}
