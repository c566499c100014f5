import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { userCacheDir } from '../../scripts/cache';

export { runWorkersInProcess, startTemporal, type InProcessWorkers } from '../../workers/in-process';
export { freePort, startWorkerProcess, type WorkerProcess } from '../../workers/worker-process';

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

