/**
 * `npm run bench:train-input`: what streaming training data from shards costs and saves, through trainJob in a child
 * process as a worker runs it.
 * (a) Bounded memory: a 224x224x3 uint8 dataset three times a memory budget (TEMPORAL_ML_TRAIN_MEMORY_BYTES, default
 *     1 GiB; BENCH_STEPS optimizer steps of a small CNN, since a whole epoch takes long on a few cores) trains in
 *     `auto` mode: prints the loading mode chosen and the child's peak RSS against the budget.
 * (b) Throughput: samples/s streaming against in-memory on datasets that fit (28x28x1 Fashion-MNIST-sized with the
 *     reference MLP and CNN, and 64x64x3), in the same run, alternating the modes; prints the ratio (target >= 0.9).
 * Datasets are seeded synthetic uint8 shards with a learnable pattern, written straight to a temporary store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalArtifactStore } from '../lib/artifacts';
import { runChildTask } from '../lib/child-task';
import type { DatasetManifest } from '../lib/datasets/manifest';
import { encodeNpy } from '../lib/npy';
import { seededRandom } from '../lib/random';
import { modelSpecSchema, trainingSpecSchema, type ModelSpec } from '../lib/schemas/model';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';
import type { TrainJobInput, TrainJobResult } from '../lib/training/train-job';
import { REFERENCE_MODELS } from './reference-models';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const BUDGET = Number(process.env.TEMPORAL_ML_TRAIN_MEMORY_BYTES ?? GiB);
const STEPS = Number(process.env.BENCH_STEPS ?? 150);
const CLASSES = 10;
const trainJobModule = require.resolve('../lib/training/train-job');

/**
 * Writes `counts` images per split of `side`x`side`x`channels` uint8 pixels in shards of `shardSize`: class c is
 * brighter in row band c, over seeded noise. Returns the manifest URI.
 */
async function writeDataset(store: LocalArtifactStore, side: number, channels: 1 | 3, counts: { train: number; validation: number }, shardSize: number): Promise<string> {
  const rowValues = side * side * channels;
  const random = seededRandom(7);
  const noise = Uint8Array.from({ length: 1 << 20 }, () => Math.floor(random() * 48));
  const templates = Array.from({ length: CLASSES }, (_, label) =>
    Uint8Array.from({ length: rowValues }, (_, i) => (Math.floor((Math.floor(i / (side * channels)) * CLASSES) / side) === label ? 160 : 40)),
  );
  const shards: DatasetManifest['shards'] = [];
  for (const split of ['train', 'validation'] as const) {
    for (let first = 0; first < counts[split]; first += shardSize) {
      const rows = Math.min(shardSize, counts[split] - first);
      const images = new Uint8Array(rows * rowValues);
      const labels = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        const label = Math.floor(random() * CLASSES);
        labels[r] = label;
        const template = templates[label]!;
        const offset = Math.floor(random() * noise.length);
        const out = r * rowValues;
        for (let i = 0; i < rowValues; i++) images[out + i] = template[i]! + noise[(offset + i) & (noise.length - 1)]!;
      }
      const imagesUri = (await store.putBlob(encodeNpy({ dtype: 'uint8', shape: [rows, side, side, channels], data: images }), '.npy')).uri;
      const labelsUri = (await store.putBlob(encodeNpy({ dtype: 'int32', shape: [rows], data: labels }), '.npy')).uri;
      shards.push({ split, imagesUri, labelsUri, count: rows });
    }
  }
  const all = counts.train + counts.validation;
  const manifest: DatasetManifest = {
    version: 2,
    source: 'bench',
    classes: Array.from({ length: CLASSES }, (_, c) => String(c)),
    shape: [side, side, channels],
    dtype: 'uint8',
    spec: preprocessSpecSchema.parse({ width: side, height: side, channels }),
    counts: { ...counts, test: 0 },
    countsPerClass: { train: [], validation: [], test: [] },
    images: { listed: all, kept: all, leftOut: 0, augmentedCopies: 0 },
    shards,
    imagesIndexUri: (await store.putBlob(Buffer.from('[]'), '.json')).uri,
    leftOut: [],
    leftOutByReason: {},
    fingerprint: `bench-${side}-${channels}-${counts.train}`,
  };
  return (await store.putBlob(Buffer.from(JSON.stringify(manifest)), '.json')).uri;
}

function train(store: LocalArtifactStore, manifestUri: string, model: ModelSpec, training: Partial<TrainJobInput['training']>, maxSteps: number, env: NodeJS.ProcessEnv = {}) {
  const job: TrainJobInput = {
    artifacts: { kind: 'local', root: store.root },
    manifestUri,
    model,
    training: trainingSpecSchema.parse({ epochs: 1, earlyStopping: null, ...training }),
    maxSteps,
  };
  return runChildTask<TrainJobInput, unknown, TrainJobResult>(trainJobModule, job, { env: { TF_CPP_MIN_LOG_LEVEL: '2', ...env } });
}

async function boundedMemory(store: LocalArtifactStore): Promise<void> {
  const side = 224;
  const rowBytes = side * side * 3;
  const trainRows = Math.ceil((3 * BUDGET) / rowBytes);
  console.log(`(a) writing ${trainRows} + 512 images of ${side}x${side}x3 uint8: ${((trainRows * rowBytes) / GiB).toFixed(2)} GiB of shards, 3x the budget of ${(BUDGET / GiB).toFixed(2)} GiB`);
  const started = performance.now();
  const manifestUri = await writeDataset(store, side, 3, { train: trainRows, validation: 512 }, 1000);
  console.log(`    written in ${((performance.now() - started) / 1000).toFixed(0)} s; training ${STEPS} steps of 32 (${((STEPS * 32) / trainRows).toFixed(2)} epoch) and validating`);
  const model = modelSpecSchema.parse({ architecture: 'cnn', filters: [4, 8], kernelSize: 3, hiddenUnits: [32], dropout: 0 });
  const result = await train(store, manifestUri, model, { batchSize: 32, learningRate: 0.001 }, STEPS, { TEMPORAL_ML_TRAIN_MEMORY_BYTES: String(BUDGET) });
  const epoch = result.history.at(-1)!;
  console.log(
    `    dataLoading ${result.dataLoading}; peak child RSS ${(result.peakRssBytes / MiB).toFixed(0)} MiB of a ${(BUDGET / MiB).toFixed(0)} MiB budget ` +
      `(${((100 * result.peakRssBytes) / BUDGET).toFixed(0)}%; baseline ${(result.baselineRssBytes / MiB).toFixed(0)} MiB); ` +
      `${result.samplesPerSecond.toFixed(1)} samples/s; validation accuracy ${epoch.validationAccuracy?.toFixed(3)}`,
  );
  console.log(`    ${result.peakRssBytes < BUDGET && result.dataLoading === 'stream' ? 'PASS' : 'FAIL'}: peak RSS under the budget`);
}

async function throughput(store: LocalArtifactStore): Promise<void> {
  console.log('(b) samples/s, streamed against in-memory (runs alternate: memory, stream, stream, memory; mean of each)');
  const fashion = await writeDataset(store, 28, 1, { train: 60_000, validation: 1_000 }, 10_000);
  const color = await writeDataset(store, 64, 3, { train: 8_000, validation: 500 }, 1_000);
  const cases = [
    { name: 'fashion 28x28 mlp', manifestUri: fashion, model: REFERENCE_MODELS.mlp, batchSize: 128, steps: 300 },
    { name: 'fashion 28x28 cnn', manifestUri: fashion, model: REFERENCE_MODELS.cnn, batchSize: 128, steps: 40 },
    { name: '64x64x3 cnn', manifestUri: color, model: modelSpecSchema.parse({ architecture: 'cnn', filters: [8, 16], hiddenUnits: [64] }), batchSize: 64, steps: 60 },
  ];
  for (const c of cases) {
    const rates: Record<'memory' | 'stream', number[]> = { memory: [], stream: [] };
    for (const dataLoading of ['memory', 'stream', 'stream', 'memory'] as const) {
      // Validation is the same work either way and not what is measured.
      const result = await train(store, c.manifestUri, c.model, { batchSize: c.batchSize, dataLoading }, c.steps);
      rates[dataLoading].push(result.samplesPerSecond);
    }
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const [memory, stream] = [mean(rates.memory), mean(rates.stream)];
    console.log(`    ${c.name.padEnd(18)} memory ${memory.toFixed(0).padStart(6)}  stream ${stream.toFixed(0).padStart(6)} samples/s  ratio ${(stream / memory).toFixed(3)}x ${stream / memory >= 0.9 ? '(within 10%)' : '(OVER 10% COST)'}`);
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'bench-train-input-'));
  const store = new LocalArtifactStore(root);
  try {
    if (process.env.BENCH_PART !== 'b') await boundedMemory(store);
    if (process.env.BENCH_PART !== 'a') await throughput(store);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
