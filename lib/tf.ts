import type * as tfjs from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { settings } from './config';

export type TensorFlow = typeof tfjs;
export type BackendName = 'tensorflow' | 'cpu';

interface Loaded {
  tf: TensorFlow;
  backend: BackendName;
}

let loaded: Loaded | undefined;

/** Marks TF_NUM_INTRAOP_THREADS as set by `oneThreadPerOp`, so children neither inherit it nor take it for a user's. */
const ONE_THREAD_PER_OP = 'TEMPORAL_ML_ONE_THREAD_PER_OP';

/**
 * Makes native TensorFlow in this process run each op on one thread (TF_NUM_INTRAOP_THREADS=1, unless the user set
 * it). For worker processes whose TensorFlow work is already spread over threads of their own, one per core (the
 * decoder threads): a pool of op threads on top only contends for the same cores. TensorFlow sizes that pool once
 * per process, as it first loads, so this must run before. Children (training, evaluation) do not inherit it.
 */
export function oneThreadPerOp(): void {
  if (process.env.TF_NUM_INTRAOP_THREADS !== undefined && !setByOneThreadPerOp(process.env)) return;
  process.env.TF_NUM_INTRAOP_THREADS = '1';
  process.env[ONE_THREAD_PER_OP] = '1';
}

/** Whether `env`'s TF_NUM_INTRAOP_THREADS is what `oneThreadPerOp` set, not a value of the user's beside a stray marker. */
const setByOneThreadPerOp = (env: NodeJS.ProcessEnv) => env[ONE_THREAD_PER_OP] === '1' && env.TF_NUM_INTRAOP_THREADS === '1';

/** `env` without what `oneThreadPerOp` set: a child's (or another worker's) TensorFlow sizes its op threads itself. */
export function withoutOneThreadPerOp(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env[ONE_THREAD_PER_OP] === undefined) return env;
  const rest = { ...env };
  if (setByOneThreadPerOp(env)) delete rest.TF_NUM_INTRAOP_THREADS;
  delete rest[ONE_THREAD_PER_OP];
  return rest;
}

/**
 * tfjs-node's native binding alone (its eager ops on tensor handles), found as tfjs-node finds it, without loading
 * TensorFlow.js: for threads that run only native ops, whose heap then holds no tfjs and whose garbage collections stay
 * small. The same module `loadNative` loads in that thread afterwards. Throws when tfjs-node is missing or does not load.
 */
export function loadNativeBinding(): unknown {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  const packageJson = require.resolve('@tensorflow/tfjs-node/package.json');
  const preGyp = createRequire(packageJson)('@mapbox/node-pre-gyp') as { find(packageJson: string): string };
  return require(preGyp.find(packageJson));
}

/** Loads native TensorFlow (`@tensorflow/tfjs-node`) itself; throws when it is not installed or does not load. */
export function loadNative(): TensorFlow {
  // TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise in worker logs unless asked for.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  return require('@tensorflow/tfjs-node') as TensorFlow;
}

function loadCpu(): TensorFlow {
  const tf = require('@tensorflow/tfjs') as TensorFlow;
  require('@tensorflow/tfjs-backend-cpu');
  return tf;
}

/**
 * tfjs-core differentiates Relu as `dy * step(x)`, and tfjs-node's Step kernel builds a tensor of ones in JavaScript
 * and uploads it on every call: for conv nets about a fifth of a training step. `dy * (x > 0)` is the same gradient
 * (0 at x = 0, as Step gives) in three native ops.
 */
function useLeanReluGradient(tf: TensorFlow): void {
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      return { x: () => tf.mul(dy as tfjs.Tensor, tf.cast(tf.greater(x!, 0), 'float32')) };
    },
  });
}

/**
 * The one TensorFlow.js entry point for models and training: native TensorFlow (`@tensorflow/tfjs-node`) when it
 * loads, otherwise the pure-JS CPU backend with one warning. `TFJS_BACKEND=native` makes a missing native runtime an
 * error; `TFJS_BACKEND=cpu` forces the JS backend.
 */
export function tensorflow(): Loaded {
  if (loaded) return loaded;
  const mode = settings().tfjsBackend;
  if (mode !== 'cpu') {
    try {
      const tf = loadNative();
      if (tf.getBackend() !== 'tensorflow') throw new Error(`tfjs-node loaded but the active backend is ${tf.getBackend()}`);
      useLeanReluGradient(tf);
      loaded = { tf, backend: 'tensorflow' };
      return loaded;
    } catch (err) {
      if (mode === 'native') {
        throw new Error(
          `TFJS_BACKEND=native but @tensorflow/tfjs-node does not load: ${(err as Error).message}\n` +
            'Run `npm run provision` to build it, or unset TFJS_BACKEND to fall back to the (much slower) CPU backend.',
        );
      }
      console.warn(
        `[temporal-ml] @tensorflow/tfjs-node is unavailable (${(err as Error).message.split('\n')[0]}); ` +
          'falling back to the pure-JS CPU backend, about 100x slower. Run `npm run provision` to build native TensorFlow.',
      );
    }
  }
  const tf = loadCpu();
  tf.setBackend('cpu').catch(() => undefined);
  loaded = { tf, backend: 'cpu' };
  return loaded;
}
