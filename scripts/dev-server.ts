import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { settings } from '../lib/config';
import { SEARCH_ATTRIBUTES } from '../lib/search-attributes';
import { ensureTemporalCli } from './temporal-cli';

export interface DevServerOptions {
  ip: string;
  port: number;
  uiPort: number;
  dbFilename: string;
  /** The Web UI decodes payloads through this codec server (`npm run codec-server`), when set. */
  codecEndpoint?: string;
}

export function devServerOptions(): DevServerOptions {
  return {
    ip: process.env.TEMPORAL_SERVER_IP ?? '127.0.0.1',
    port: Number(process.env.TEMPORAL_SERVER_PORT ?? 7233),
    uiPort: Number(process.env.TEMPORAL_UI_PORT ?? 8233),
    dbFilename: process.env.TEMPORAL_DB_FILENAME ?? join(settings().dataDir, 'temporal.db'),
    codecEndpoint: process.env.TEMPORAL_UI_CODEC_ENDPOINT || undefined,
  };
}

/**
 * Dynamic config of every dev server the project starts. Temporal splits a task queue into four partitions by default,
 * and a task in one partition's backlog goes only to polls that land on that partition: a worker with one free slot
 * polls one partition at a time and can sit idle for seconds while the next batch waits on another. The project's
 * queues carry few, long tasks to few workers; in one partition each task goes to the next poll as
 * soon as a slot frees. `docker/temporal-dynamic-config.yaml` sets the same for the project's queues on a cluster.
 */
const DEV_SERVER_DYNAMIC_CONFIG: Record<string, unknown> = {
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
};

/** `DEV_SERVER_DYNAMIC_CONFIG` as arguments of `temporal server start-dev`. */
export function devServerDynamicConfigArgs(): string[] {
  return Object.entries(DEV_SERVER_DYNAMIC_CONFIG).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${JSON.stringify(value)}`]);
}

/** `temporal server start-dev` with SQLite persistence, the Web UI, the project's search attributes and dynamic config. */
export function startDevServer(options: DevServerOptions, stdio: 'inherit' | 'ignore' = 'inherit'): ChildProcess {
  const cli = ensureTemporalCli();
  mkdirSync(join(options.dbFilename, '..'), { recursive: true });
  const args = [
    'server', 'start-dev',
    '--ip', options.ip,
    '--port', String(options.port),
    '--ui-port', String(options.uiPort),
    '--db-filename', options.dbFilename,
    '--log-level', 'warn',
    ...(options.codecEndpoint ? ['--ui-codec-endpoint', options.codecEndpoint] : []),
    ...SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
    ...devServerDynamicConfigArgs(),
  ];
  return spawn(cli, args, { stdio });
}

/** Resolves once something accepts TCP connections on host:port, or rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host, port }, () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
