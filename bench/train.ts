/**
 * `npm run bench:train`: training throughput and inference latency of the reference MLP and CNN on
 * Fashion-MNIST-shaped data, on tfjs-node, on the tfjs CPU backend and on Keras (Python TensorFlow from the same
 * wheel), in one run, with the same architecture, batch size and thread count. Prints each figure and the ratios.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { TENSORFLOW_WHEEL_VERSION } from '../scripts/provision-tensorflow';
import { lastJsonLine, runPythonBench, tensorflowPython } from './tensorflow-python';
import { withoutOneThreadPerOp } from '../lib/tf';

interface Measurement {
  runtime: 'tfjs-node' | 'tfjs-cpu' | 'keras';
  architecture: 'mlp' | 'cnn';
  samples: number;
  batchSize: number;
  trainSamplesPerSecond: number;
  latencyBatch1Ms: number;
  latencyBatch256Ms: number;
}

const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 128);
const THREADS = availableParallelism();
/** Training samples per timed epoch; the JS CPU backend gets fewer, being two orders of magnitude slower. */
const SAMPLES = {
  mlp: { native: 30_000, cpu: 3_000 },
  cnn: { native: 6_000, cpu: 256 },
};
const threadEnv = { TF_NUM_INTRAOP_THREADS: String(THREADS), TF_NUM_INTEROP_THREADS: String(THREADS), TF_CPP_MIN_LOG_LEVEL: '2' };

function runTfjs(backend: 'native' | 'cpu', architecture: 'mlp' | 'cnn'): Measurement {
  const samples = SAMPLES[architecture][backend];
  const out = execFileSync(process.execPath, [join(__dirname, 'train-backend.js'), architecture, String(samples), String(BATCH_SIZE)], {
    env: { ...withoutOneThreadPerOp(process.env), ...threadEnv, TFJS_BACKEND: backend },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return lastJsonLine<Measurement>(out);
}

function runKeras(python: string, architecture: 'mlp' | 'cnn'): Promise<Measurement> {
  return runPythonBench<Measurement>(python, 'keras_bench.py', [architecture, String(SAMPLES[architecture].native), String(BATCH_SIZE), String(THREADS)], threadEnv);
}

function row(m: Measurement): string {
  return `${m.architecture.padEnd(4)} ${m.runtime.padEnd(10)} ${String(m.samples).padStart(6)} ${m.trainSamplesPerSecond.toFixed(0).padStart(10)} ` +
    `${m.latencyBatch1Ms.toFixed(2).padStart(10)} ${m.latencyBatch256Ms.toFixed(1).padStart(11)}`;
}

async function main(): Promise<void> {
  const python = tensorflowPython();
  console.log(`Batch size ${BATCH_SIZE}, ${THREADS} threads, TensorFlow ${TENSORFLOW_WHEEL_VERSION} under both tfjs-node and Keras.\n`);
  console.log('model runtime     samples  samples/s  batch-1 ms  batch-256 ms');
  const verdicts: string[] = [];
  for (const architecture of ['mlp', 'cnn'] as const) {
    const node = runTfjs('native', architecture);
    console.log(row(node));
    const cpu = runTfjs('cpu', architecture);
    console.log(row(cpu));
    const keras = await runKeras(python, architecture);
    console.log(row(keras));
    const vsCpu = node.trainSamplesPerSecond / cpu.trainSamplesPerSecond;
    const vsKeras = node.trainSamplesPerSecond / keras.trainSamplesPerSecond;
    verdicts.push(
      `${architecture}: tfjs-node training is ${vsCpu.toFixed(1)}x the tfjs CPU backend (target >= 30x: ${vsCpu >= 30 ? 'met' : 'MISSED'}), ` +
        `${vsKeras.toFixed(2)}x Keras (target >= 0.8x: ${vsKeras >= 0.8 ? 'met' : 'MISSED'}); ` +
        `batch-1 latency ${(node.latencyBatch1Ms / keras.latencyBatch1Ms).toFixed(2)}x Keras', batch-256 ${(node.latencyBatch256Ms / keras.latencyBatch256Ms).toFixed(2)}x Keras' (lower is better)`,
    );
  }
  console.log(`\n${verdicts.join('\n')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
