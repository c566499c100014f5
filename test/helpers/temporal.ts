import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { userCacheDir } from '../../scripts/cache';

export { runWorkersInProcess, startTemporal, type InProcessWorkers } from '../../workers/in-process';

/**
 * A new data directory. Its built-in digits link to one copy shared by every test, so that each test does not write
 * the same 10,000 files again (their writing is tested in mnist-digits.test.ts).
 */
export function temporaryDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'temporal-ml-test-'));
  mkdirSync(join(dir, 'builtin'));
  symlinkSync(sharedMnistDigits(), join(dir, 'builtin', 'mnist-digits'));
  return dir;
}

/** The built-in digits, written once per machine and per version of the code and data that produce them. */
function sharedMnistDigits(): string {
  const writer = require.resolve('../../lib/datasets/mnist-digits');
  const version = createHash('sha256').update(readFileSync(writer)).update(readFileSync(require.resolve('mnist/package.json'))).digest('hex').slice(0, 16);
  const dir = join(userCacheDir(), 'test-data', `mnist-digits-${version}`);
  if (!existsSync(dir)) {
    mkdirSync(join(dir, '..'), { recursive: true });
    execFileSync(process.execPath, ['-e', `require(${JSON.stringify(writer)}).materializeMnistDigits(${JSON.stringify(dir)})`], { stdio: 'inherit' });
  }
  return dir;
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
