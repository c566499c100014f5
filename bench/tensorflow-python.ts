/** Python TensorFlow for the benchmarks that compare against it (Keras training, tf.data input pipelines). */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { userCacheDir } from '../scripts/cache';
import { TENSORFLOW_WHEEL_VERSION } from '../scripts/provision-tensorflow';
import { withoutOneThreadPerOp } from '../lib/tf';

/** A virtual environment with tensorflow-cpu from the same wheel tfjs-node's runtime came from, cached per user. */
export function tensorflowPython(): string {
  const venv = join(userCacheDir(), 'bench-venv', `tensorflow-cpu-${TENSORFLOW_WHEEL_VERSION}`);
  const python = join(venv, 'bin', 'python');
  if (existsSync(join(venv, '.ready'))) return python;
  console.error(`Creating ${venv} with tensorflow-cpu==${TENSORFLOW_WHEEL_VERSION} (once)…`);
  mkdirSync(venv, { recursive: true });
  execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--find-links', join(userCacheDir(), 'wheels'), `tensorflow-cpu==${TENSORFLOW_WHEEL_VERSION}`], { stdio: 'inherit' });
  writeFileSync(join(venv, '.ready'), '');
  return python;
}

/** The last line of a benchmark's output, which is its result as one JSON object. */
export function lastJsonLine<T>(output: string): T {
  return JSON.parse(output.trim().split('\n').at(-1)!) as T;
}

/** Runs one of bench/'s Python scripts in that environment and returns the JSON object it prints last. */
export async function runPythonBench<T>(python: string, script: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<T> {
  const run = await promisify(execFile)(python, [join(__dirname, '..', '..', 'bench', script), ...args], {
    // TensorFlow sizes its own threads, whatever a preprocessing worker in this process chose for its own.
    env: { ...withoutOneThreadPerOp(process.env), TF_CPP_MIN_LOG_LEVEL: '2', ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  }).catch((err: Error & { stderr?: string }) => {
    throw new Error(`${script} failed: ${err.message}\n${err.stderr ?? ''}`);
  });
  return lastJsonLine<T>(run.stdout);
}
