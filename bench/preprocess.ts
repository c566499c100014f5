/**
 * `npm run bench:preprocess`: images per second of the whole `preprocessDataset` workflow (real Temporal dev server,
 * a worker in this process) on the 70,000-PNG Fashion-MNIST folder tree, against a bare sharp loop doing the same
 * operations with the same functions (read, decode, EXIF orientation, flatten, resize, grayscale, scale to float32) on
 * the same files, with the same number of images in flight, in one run. Prints each figure and the ratio; the target is at least 0.9x the bare loop.
 * Then the workflow once more with the local artifact store and once with the object store (a versitygw server started
 * here, shards and manifests in its bucket), back to back: the target is at least 0.8x the local store's images/s.
 *
 * BENCH_IMAGES limits the images used; BENCH_PARALLELISM and BENCH_BATCH_SIZE set the workflow's batching.
 */
import { mkdtempSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalArtifactStore, useArtifactStore } from '../lib/artifacts';
import { mapWithConcurrency } from '../lib/concurrency';
import { settings } from '../lib/config';
import { roundRobin } from '../lib/datasets/listing';
import { withinLimits } from '../lib/preprocessing/limits';
import { normalizeInto } from '../lib/preprocessing/normalize';
import { toPixels } from '../lib/preprocessing/transform';
import { S3ArtifactStore, parseS3Url } from '../lib/s3-artifacts';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';
import { startObjectStore } from '../scripts/object-store';
import { runWorkersInProcess, startTemporal } from '../workers/in-process';
import { preprocessDataset } from '../workflows';

const TREE = 'fashion-mnist-png';
const SPEC = withinLimits(preprocessSpecSchema.parse({}), 1, settings().limits);
const LIMIT = process.env.BENCH_IMAGES ? Number(process.env.BENCH_IMAGES) : null;
const PARALLELISM = Number(process.env.BENCH_PARALLELISM ?? 8);
const BATCH_SIZE = process.env.BENCH_BATCH_SIZE ? Number(process.env.BENCH_BATCH_SIZE) : null;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Images decoded at once inside one preprocessing batch (the activity's default). */
const DECODES_PER_BATCH = 8;

async function listTree(root: string): Promise<string[]> {
  const classes = (await readdir(root)).sort();
  const perClass = await Promise.all(classes.map(async (name) => (await readdir(join(root, name))).sort().map((file) => join(root, name, file))));
  return roundRobin(perClass, LIMIT);
}

/** The same per-image operations the workflow's activities run (the same functions), with nothing around them. */
async function bareLoop(files: string[], concurrency: number): Promise<number> {
  const started = performance.now();
  const size = SPEC.width * SPEC.height * SPEC.channels;
  await mapWithConcurrency(files, concurrency, async (file) => {
    const pixels = await toPixels(await readFile(file), SPEC);
    normalizeInto(pixels, SPEC, new Float32Array(size), 0);
  });
  return files.length / ((performance.now() - started) / 1000);
}

/** Runs `work` while sampling this process's resident memory; returns its result and the peak seen. */
async function withPeakRss<T>(work: () => Promise<T>): Promise<{ value: T; peakRss: number }> {
  let peakRss = process.memoryUsage.rss();
  const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100);
  try {
    return { value: await work(), peakRss };
  } finally {
    clearInterval(timer);
  }
}

/** Images/s of the workflow on the local store, then on a fresh versitygw bucket, back to back. */
async function objectStoreRun(dataDir: string, local: () => Promise<{ result: { images: { listed: number } }; seconds: number }>, s3: typeof local): Promise<{ local: number; s3: number }> {
  // A fresh store for each side: neither finds the other's batches in its cache.
  useArtifactStore(new LocalArtifactStore(join(dataDir, 'local-artifacts')));
  const onLocal = await local().finally(() => useArtifactStore(undefined));
  const server = await startObjectStore(
    { dataDir: join(dataDir, 'objectstore'), host: '127.0.0.1', port: Number(process.env.BENCH_OBJECTSTORE_PORT ?? 17070), accessKeyId: 'bench', secretAccessKey: 'bench-secret', bucket: 'bench' },
    'ignore',
  );
  try {
    const env = server.env();
    useArtifactStore(
      new S3ArtifactStore({
        kind: 's3',
        ...parseS3Url(env.TEMPORAL_ML_ARTIFACT_URL!),
        endpoint: server.endpoint,
        region: env.AWS_REGION,
        forcePathStyle: true,
        credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
        cacheDir: join(dataDir, 'artifact-cache'),
        cacheBytes: settings().artifactCacheBytes,
      }),
    );
    const onS3 = await s3();
    return { local: onLocal.result.images.listed / onLocal.seconds, s3: onS3.result.images.listed / onS3.seconds };
  } finally {
    useArtifactStore(undefined);
    server.process.kill('SIGTERM');
  }
}

const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'temporal-ml-bench-'));
  const datasetsRoot = process.env.TEMPORAL_ML_DATASETS_ROOT ?? join(process.env.TEMPORAL_ML_DATA_DIR ?? '.data', 'datasets');
  process.env.TEMPORAL_ML_DATASETS_ROOT = datasetsRoot;
  process.env.TEMPORAL_ML_DATA_DIR = dataDir;
  const files = await listTree(join(datasetsRoot, TREE));
  console.log(`${files.length} PNG files from ${join(datasetsRoot, TREE)}; spec ${SPEC.width}x${SPEC.height}x${SPEC.channels}, fit ${SPEC.fit}`);
  // Both sides read from the page cache: read every file once first.
  await mapWithConcurrency(files, 32, (file) => readFile(file));

  const env = await startTemporal();
  const workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu']);
  const input = { dataset: { source: TREE, maxImages: LIMIT }, batching: { size: BATCH_SIZE, parallelism: PARALLELISM } };
  const runWorkflow = async (id: string) => {
    const started = performance.now();
    const result = await env.client.workflow.execute(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: id, args: [input] });
    return { result, seconds: (performance.now() - started) / 1000 };
  };

  try {
    const concurrency = PARALLELISM * DECODES_PER_BATCH;
    const rounds: { bare: number; workflow: number; bareRss: number; workflowRss: number }[] = [];
    // This machine's speed drifts by several percent over minutes: each round times both sides back to back, and the
    // ratio reported is the median of the rounds' ratios.
    for (let round = 1; round <= ROUNDS; round++) {
      const { value: bare, peakRss: bareRss } = await withPeakRss(() => bareLoop(files, concurrency));
      await rm(join(dataDir, 'artifacts'), { recursive: true, force: true });
      const { value, peakRss: workflowRss } = await withPeakRss(() => runWorkflow(`bench-preprocess-${round}-${Date.now()}`));
      const { result, seconds } = value;
      const workflow = result.images.listed / seconds;
      rounds.push({ bare, workflow, bareRss, workflowRss });
      console.log(
        `round ${round}: bare loop ${Math.round(bare)} images/s (peak RSS ${mib(bareRss)}); workflow ${Math.round(workflow)} images/s ` +
          `(peak RSS ${mib(workflowRss)}, worker and workflow in this process), ${(workflow / bare).toFixed(2)}x ` +
          `(${seconds.toFixed(1)} s, ${result.batches} batches of ${result.batchSize}, ${result.images.kept} kept, ` +
          `${result.images.leftOut} left out: ${JSON.stringify(result.leftOutByReason)})`,
      );
    }
    const cached = await runWorkflow(`bench-preprocess-cached-${Date.now()}`);
    const objectStore = await objectStoreRun(dataDir, () => runWorkflow(`bench-preprocess-local-${Date.now()}`), () => runWorkflow(`bench-preprocess-s3-${Date.now()}`));
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const rows: [string, number, number][] = [
      ['bare loop (median)', median(rounds.map((r) => r.bare)), Math.max(...rounds.map((r) => r.bareRss))],
      ['preprocessDataset workflow (median)', median(rounds.map((r) => r.workflow)), Math.max(...rounds.map((r) => r.workflowRss))],
      ['preprocessDataset re-run, cache hit', cached.result.images.listed / cached.seconds, NaN],
      ['preprocessDataset, local artifact store', objectStore.local, NaN],
      ['preprocessDataset, object store (versitygw)', objectStore.s3, NaN],
    ];
    console.log(`\n| what | images/s | peak RSS |\n|---|---|---|`);
    for (const [what, rate, rss] of rows) console.log(`| ${what} | ${Math.round(rate).toLocaleString('en-US')} | ${Number.isNaN(rss) ? '' : mib(rss)} |`);
    const ratio = median(rounds.map((r) => r.workflow / r.bare));
    console.log(
      `\nworkflow / bare loop: ${ratio.toFixed(2)}x, median of ${ROUNDS} rounds (target 0.9x: ${ratio >= 0.9 ? 'met' : 'missed'}); ` +
        `same ${concurrency} images in flight (${PARALLELISM} batches x ${DECODES_PER_BATCH}); cache re-run: ${cached.result.cache.hit ? 'hit' : 'miss'} in ${cached.seconds.toFixed(1)} s`,
    );
    const s3Ratio = objectStore.s3 / objectStore.local;
    console.log(`object store / local store: ${s3Ratio.toFixed(2)}x (target 0.8x: ${s3Ratio >= 0.8 ? 'met' : 'missed'})`);
  } finally {
    await workers.shutdown();
    await env.teardown();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
