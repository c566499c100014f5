import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as activities from '../../activities';
import type { TaskQueue } from '../../lib/config';
import { SEARCH_ATTRIBUTES } from '../../lib/search-attributes';
import { ensureTemporalCli } from '../../scripts/temporal-cli';

/** A real Temporal dev server (the provisioned `temporal` CLI) on a free port, with the project's search attributes. */
export function startTemporal(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: ensureTemporalCli() },
      searchAttributes: SEARCH_ATTRIBUTES,
    },
  });
}

export interface InProcessWorkers {
  shutdown(): Promise<void>;
}

/** Workers in this process: workflows on `ml-pipeline`, activities on the other queues named. */
export async function runWorkersInProcess(env: TestWorkflowEnvironment, queues: TaskQueue[], options: { trainSlots?: number } = {}): Promise<InProcessWorkers> {
  const workers = await Promise.all(
    queues.map((taskQueue) =>
      taskQueue === 'ml-pipeline'
        ? Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { codePath: join(__dirname, '..', '..', 'workflow-bundle.js') } })
        : Worker.create({ connection: env.nativeConnection, taskQueue, activities, maxConcurrentActivityTaskExecutions: taskQueue === 'ml-train' ? options.trainSlots : undefined }),
    ),
  );
  const running = Promise.all(workers.map((w) => w.run()));
  return {
    async shutdown() {
      workers.forEach((w) => w.shutdown());
      await running;
    },
  };
}

export function temporaryDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'temporal-ml-test-'));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface WorkerProcess {
  process: ChildProcess;
  metricsPort: number;
  sdkMetricsPort: number;
  output: () => string;
  stop: () => Promise<number | null>;
}

/** Starts the real worker (`dist/workers/main.js`, or another build's `main`) against `address` and waits until it polls. */
export async function startWorkerProcess(address: string, dataDir: string, env: NodeJS.ProcessEnv = {}, main = join(__dirname, '..', '..', 'workers', 'main.js')): Promise<WorkerProcess> {
  const metricsPort = await freePort();
  const sdkMetricsPort = await freePort();
  const child = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_ML_DATA_DIR: dataDir,
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      SDK_METRICS_PORT: String(sdkMetricsPort),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start within 60 s:\n${output}`)), 60_000);
    const check = () => {
      if (output.includes('Worker connected')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with code ${code} before connecting:\n${output}`));
    });
  }).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    process: child,
    metricsPort,
    sdkMetricsPort,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
