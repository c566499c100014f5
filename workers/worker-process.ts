/** For tests and benchmarks: the real worker as a process of its own. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { withoutOneThreadPerOp } from '../lib/tf';

/**
 * A port free now, for a server started next. Drawn at random below Linux's ephemeral range (32768 and up), where
 * the kernel also picks the local ports of outgoing connections: a port it handed out for listening could be taken
 * by a connection before the server binds it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    // A port handed out earlier may not be bound yet (a worker's two metrics ports): never hand it out twice.
    if (!handedOut.has(port) && (await canListen(port))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found in 100 tries');
}

const handedOut = new Set<number>();

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface WorkerProcess {
  process: ChildProcess;
  metricsPort: number;
  sdkMetricsPort: number;
  output: () => string;
  stop: () => Promise<number | null>;
}

/**
 * Starts the real worker (`dist/workers/main.js`, or another build's `main`) against `address` and waits until it polls;
 * with `cpus` (a `taskset -c` list), a process that can run on those CPUs only, like a machine with that many cores.
 */
export async function startWorkerProcess(
  address: string,
  dataDir: string,
  env: NodeJS.ProcessEnv = {},
  main = join(__dirname, 'main.js'),
  cpus?: string,
): Promise<WorkerProcess> {
  const metricsPort = await freePort();
  const sdkMetricsPort = await freePort();
  const [command, ...args] = cpus === undefined ? [process.execPath, main] : ['taskset', '-c', cpus, process.execPath, main];
  const child = spawn(command!, args, {
    env: {
      ...withoutOneThreadPerOp(process.env),
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
