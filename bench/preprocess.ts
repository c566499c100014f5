/**
 * `npm run bench:preprocess`: images per second of the whole `preprocessDataset` workflow (real Temporal dev server)
 * against two baselines measured in the same run, on two datasets:
 *   - the 70,000-PNG Fashion-MNIST folder tree, to 28x28x1;
 *   - 2,000 synthetic 640x480 baseline JPEG photos (scripts/photos-jpeg.ts, seeded, written once), to 224x224x3.
 * Both with fit `fill` (stretch, as Keras does by default). The workflow writes shards as it does by default, uint8
 * pixels scaled to [0, 1] when loaded (BENCH_STORAGE=float32: scaled and stored as float32); tf.data always scales.
 *
 * Baselines:
 *   - tf.data: Keras' `image_dataset_from_directory(root, image_size, color_mode, batch_size, shuffle=False)` with
 *     `Rescaling(1/255)` mapped over it and `.prefetch(AUTOTUNE)`, iterated to the end, in Python TensorFlow from the
 *     same wheel as tfjs-node's runtime, with tf.data's defaults (every core). Per image it does `read_file`,
 *     `decode_image` (full-size decode) and `tf.image.resize` (bilinear, no antialiasing), and nothing else.
 *   - a bare sharp loop doing the workflow's per-image operations with the same functions (read, decode, EXIF
 *     orientation, flatten, resize, grayscale or sRGB; with float32 storage, scale to float32), with the same number of
 *     images in flight.
 * The workflow does more than either: it lists and hashes every file (sha256), quarantines unreadable or oversized
 * ones, splits train/validation/test by a hash of each image's content, and writes shards and a manifest to
 * the artifact store durably (fsynced, then renamed). Its worker (one, `ml-cpu` and `ml-pipeline`) runs in this process;
 * tf.data and the bare loop each run in a process of their own.
 * Every file is read once before timing, so all sides read from the page cache; the workflow's worker runs a small
 * warm-up workflow first, as tf.data's clock starts once TensorFlow is imported. Beside images per second of wall
 * time, each side's images per CPU-second, which other jobs on the machine disturb less: CPU of every thread of the
 * Python process, of the bare loop's, or of this process (the workflow's figure leaves out the Temporal server's).
 *
 * Scaling: the workflow with `ml-cpu` served by worker processes (`dist/workers/main.js`), each pinned with
 * `taskset -c` to a core of its own, like machines of one core (decoder threads set to one: TEMPORAL_ML_DECODER_THREADS,
 * VIPS_CONCURRENCY): one such worker, then two on different cores. The Temporal server, the workflow worker and this
 * process are not pinned. Before them, the workflow's decoders in a bare loop pinned to one core, then to each core at
 * once, say how much faster two busy cores of this machine are than one: more than two pinned workers can reach. Each
 * round prints the cores each pinned worker, the Temporal server and this process (the workflow worker) kept busy, and
 * those the rest of the machine did. On a machine of two cores the Temporal server and the workflow worker take their
 * share of the pinned workers' cores when two of them are busy, and of the idle one when one is: the scaling rounds are
 * run again with each pinned worker's CPU time capped (cgroup v1 CPU quota, where this process may set it), which
 * leaves them the rest of both cores, as workers on machines of their own would.
 *
 * After the Fashion-MNIST rounds, the workflow once more as a cache hit, and once with the local artifact store and
 * once with the object store (a versitygw server started here, shards and manifests in its bucket), back to back.
 *
 * BENCH_DATASETS (comma-separated folder names: fashion-mnist-png, photos-640x480) picks the datasets, BENCH_IMAGES limits
 * the images of each; BENCH_ROUNDS (3) sets the rounds, figures being medians over them;
 * BENCH_PARALLELISM and BENCH_BATCH_SIZE set the workflow's batching, BENCH_STORAGE its shards' dtype,
 * BENCH_TFDATA_BATCH (32, Keras' default) tf.data's batch size; BENCH_WORKER_SLOTS (2) the pinned workers' activity
 * slots, BENCH_WORKER_CPU_CAP (0.75) their cores of CPU time in the capped rounds (none: no capped rounds);
 * BENCH_SKIP_OBJECTSTORE=1 leaves out the cache re-run
 * and the object store, BENCH_SKIP_SCALING=1 the scaling, BENCH_SKIP_PEER=1 everything but the scaling.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { LocalArtifactStore, useArtifactStore } from '../lib/artifacts';
import { mapWithConcurrency } from '../lib/concurrency';
import { settings } from '../lib/config';
import { roundRobin } from '../lib/datasets/listing';
import { DECODE_CONCURRENCY } from '../lib/preprocessing/batch';
import { withinLimits, type LimitedSpec } from '../lib/preprocessing/limits';
import { S3ArtifactStore, parseS3Url } from '../lib/s3-artifacts';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';
import { startObjectStore } from '../scripts/object-store';
import { ensurePhotoTree } from '../scripts/photos-jpeg';
import { startWorkerProcess, type WorkerProcess } from '../workers/worker-process';
import { runWorkersInProcess, startTemporal } from '../workers/in-process';
import { preprocessDataset } from '../workflows';
import { bareLoopInChild, type BareLoopOptions, type BareLoopRun } from './bare-loop';
import { childProcessesNamed, coresBusyDuring, type CoresBusy } from './cores-busy';
import { capCpu, cpuQuotasWork } from './cpu-quota';
import { measured } from './measured';
import { runPythonBench, tensorflowPython } from './tensorflow-python';
import { median } from '../lib/median';

interface BenchDataset {
  name: string;
  /** Folder under the datasets root, one sub-folder per class. */
  tree: string;
  shape: { width: number; height: number; channels: 1 | 3 };
  /** Images per preprocessing batch unless BENCH_BATCH_SIZE says otherwise; null is the workflow's default. */
  batchSize: number | null;
  /** Writes the tree when it is missing (the Fashion-MNIST one is provisioned by `npm run bench:preprocess`). */
  ensure?: (root: string) => Promise<void>;
}

const ALL_DATASETS: BenchDataset[] = [
  { name: 'Fashion-MNIST PNG 28x28 -> 28x28x1', tree: 'fashion-mnist-png', shape: { width: 28, height: 28, channels: 1 }, batchSize: null },
  // Batches of 100 rather than the default (about 450 photos): 20 of them, enough to spread over the workers.
  { name: 'JPEG photos 640x480 -> 224x224x3', tree: 'photos-640x480', shape: { width: 224, height: 224, channels: 3 }, batchSize: 100, ensure: (root) => ensurePhotoTree(root) },
];
const DATASETS = process.env.BENCH_DATASETS ? ALL_DATASETS.filter((d) => process.env.BENCH_DATASETS!.split(',').includes(d.tree)) : ALL_DATASETS;
const LIMIT = process.env.BENCH_IMAGES ? Number(process.env.BENCH_IMAGES) : null;
const PARALLELISM = Number(process.env.BENCH_PARALLELISM ?? 8);
const BATCH_SIZE = process.env.BENCH_BATCH_SIZE ? Number(process.env.BENCH_BATCH_SIZE) : null;
const STORAGE = preprocessSpecSchema.shape.storage.parse(process.env.BENCH_STORAGE ?? 'uint8');
const TFDATA_BATCH = Number(process.env.BENCH_TFDATA_BATCH ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SKIP_OBJECTSTORE = process.env.BENCH_SKIP_OBJECTSTORE === '1';
const SKIP_SCALING = process.env.BENCH_SKIP_SCALING === '1';
const SKIP_PEER = process.env.BENCH_SKIP_PEER === '1';
/** Cores of CPU time each pinned worker gets in the capped scaling rounds; BENCH_WORKER_CPU_CAP=none leaves them out. */
const CPU_CAP = process.env.BENCH_WORKER_CPU_CAP === 'none' ? undefined : Number(process.env.BENCH_WORKER_CPU_CAP ?? 0.75);
/** A worker's warm-up run, before it is timed: this many batches of this many images (see `warmUpRun`). */
const WARM_UP_BATCHES = 16;
const WARM_UP_BATCH_SIZE = 8;
/** The cores the pinned workers get, one each. */
const PINNED_CORES = ['0', '1'];

/** One side's images per second of wall time and per CPU-second (a figure other jobs on the machine disturb less). */
type Rate = { wall: number; cpu: number };
type Round = Record<'tfdata' | 'bare' | 'workflow', Rate> & { bareRss: number; workflowRss: number };
type WorkflowRun = { result: { images: { listed: number; kept: number; leftOut: number }; batches: number; batchSize: number; leftOutByReason: unknown; cache: { hit: boolean } }; seconds: number };

const preprocessOf = (dataset: BenchDataset) => ({ ...dataset.shape, fit: 'fill' as const, storage: STORAGE });
const specOf = (dataset: BenchDataset): LimitedSpec => withinLimits(preprocessSpecSchema.parse(preprocessOf(dataset)), 1, settings().limits);
const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
const perSecond = (rate: number) => Math.round(rate).toLocaleString('en-US');
/** Cores: CPU-seconds per second of wall time (tf.data's autotuning does not always keep both cores busy). */
const rate = ({ wall, cpu }: Rate) => `${perSecond(wall)} images/s (${perSecond(cpu)} per CPU-second, ${(wall / cpu).toFixed(1)} cores)`;
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
const met = (ratio: number, target: number) => `target ${target.toFixed(1)}x: ${ratio >= target ? 'met' : 'MISSED'}`;

async function listTree(root: string): Promise<string[]> {
  const classes = (await readdir(root)).sort();
  const perClass = await Promise.all(classes.map(async (name) => (await readdir(join(root, name))).sort().map((file) => join(root, name, file))));
  return roundRobin(perClass, LIMIT);
}

/** The folder tf.data reads: the tree itself, or, for a subset, a tree of links to the same files the workflow takes. */
async function tfDataRoot(root: string, files: string[], scratch: string): Promise<string> {
  if (LIMIT === null) return root;
  const subset = join(scratch, `tfdata-${basename(root)}`);
  await rm(subset, { recursive: true, force: true });
  for (const file of files) {
    const dir = join(subset, basename(dirname(file)));
    await mkdir(dir, { recursive: true });
    await symlink(file, join(dir, basename(file)));
  }
  return subset;
}

async function tfData(python: string, root: string, spec: LimitedSpec): Promise<Rate> {
  const args = [root, String(spec.height), String(spec.width), String(spec.channels), String(TFDATA_BATCH)];
  const { images, seconds, cpuSeconds } = await runPythonBench<{ images: number; seconds: number; cpuSeconds: number }>(python, 'tfdata_bench.py', args);
  return { wall: images / seconds, cpu: images / cpuSeconds };
}

/** Images/s of the workflow on the local store, then on a fresh versitygw bucket, back to back. */
async function objectStoreRun(dataDir: string, local: () => Promise<WorkflowRun>, s3: typeof local): Promise<{ local: number; s3: number }> {
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

/** Images a worker process has preprocessed since it started, from its Prometheus metrics. */
async function imagesPreprocessedBy(worker: WorkerProcess): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
  return metrics
    .split('\n')
    .filter((line) => line.startsWith('temporal_ml_images_preprocessed_total'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

/**
 * How much faster this machine decodes on two busy cores than on one: the workflow's decoders in a bare loop pinned
 * to one core, then one such loop pinned to each core, started together. Cores that share a physical core, a power
 * budget or caches slow each other down, and no pair of pinned workers can scale past this.
 */
async function twoBusyCores(files: string[], spec: LimitedSpec, concurrency: number, scratch: string): Promise<{ alone: number; together: number; ratio: number }> {
  const options = (core: string): BareLoopOptions => ({ decoders: 'workflow', core, startAt: Date.now() + 5_000 });
  const rateOf = (run: BareLoopRun) => files.length / run.seconds;
  const alone = rateOf(await bareLoopInChild(files, spec, concurrency, scratch, options(PINNED_CORES[0]!)));
  // Summed rates: where one loop ends first, the other runs alone for a moment, so this errs on the high side.
  const together = (await Promise.all(PINNED_CORES.map((core) => bareLoopInChild(files, spec, concurrency, scratch, options(core))))).reduce((sum, run) => sum + rateOf(run), 0);
  return { alone, together, ratio: together / alone };
}

function tasksetWorks(): boolean {
  try {
    execFileSync('taskset', ['-c', PINNED_CORES[0]!, 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'temporal-ml-bench-'));
  const datasetsRoot = resolve(process.env.TEMPORAL_ML_DATASETS_ROOT ?? join(process.env.TEMPORAL_ML_DATA_DIR ?? '.data', 'datasets'));
  process.env.TEMPORAL_ML_DATASETS_ROOT = datasetsRoot;
  process.env.TEMPORAL_ML_DATA_DIR = dataDir;
  const python = SKIP_PEER ? '' : tensorflowPython();
  console.log(`${availableParallelism()} cores; load average ${load()}; ${ROUNDS} rounds, figures are medians; workflow batching: ${PARALLELISM} batches in flight, ` +
    `shards stored as ${STORAGE}; tf.data batch size ${TFDATA_BATCH}`);

  const env = await startTemporal();
  const pipelineWorker = await runWorkersInProcess(env, ['ml-pipeline']);
  let cpuWorker: { shutdown(): Promise<void> } | undefined = await runWorkersInProcess(env, ['ml-cpu']);
  const runWorkflow = async (dataset: BenchDataset, id: string, batching: { images: number | null; size: number | null } = { images: LIMIT, size: BATCH_SIZE ?? dataset.batchSize }): Promise<WorkflowRun> => {
    const input = { dataset: { source: dataset.tree, maxImages: batching.images }, preprocess: preprocessOf(dataset), batching: { size: batching.size, parallelism: PARALLELISM } };
    const started = performance.now();
    const result = await env.client.workflow.execute(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `bench-preprocess-${id}-${Date.now()}`, args: [input] });
    return { result, seconds: (performance.now() - started) / 1000 };
  };
  const clearArtifacts = () => rm(join(dataDir, 'artifacts'), { recursive: true, force: true });
  // A fresh worker's first batches start its decoder and reader threads, load TensorFlow in them and fill its memory
  // pools: a one-time cost of a worker's life, which small batches of the dataset's own images pay before timing.
  const warmUpRun = async (dataset: BenchDataset, name: string) => {
    await clearArtifacts();
    await runWorkflow(dataset, `${dataset.tree}-warm-up-${name}`, { images: WARM_UP_BATCHES * WARM_UP_BATCH_SIZE, size: WARM_UP_BATCH_SIZE });
  };
  const freshWorkflowRun = async (dataset: BenchDataset, id: string) => {
    await clearArtifacts();
    return runWorkflow(dataset, id);
  };
  const concurrency = PARALLELISM * DECODE_CONCURRENCY;
  const summaries: string[] = [];

  try {
    for (const dataset of DATASETS) {
      const root = join(datasetsRoot, dataset.tree);
      await dataset.ensure?.(root);
      if (SKIP_PEER) continue;
      const files = await listTree(root);
      const spec = specOf(dataset);
      const tfRoot = await tfDataRoot(root, files, dataDir);
      console.log(`\n${dataset.name}: ${files.length} files from ${root}`);
      // Every side reads from the page cache: read every file once first.
      await mapWithConcurrency(files, 32, (file) => readFile(file));
      // As tf.data's clock starts once TensorFlow is imported, the worker's starts once its decoder threads have loaded it.
      await warmUpRun(dataset, 'in-process');

      const rounds: Round[] = [];
      // This machine's speed drifts by several percent over minutes: each round times every side back to back, and
      // the ratios reported are medians of the rounds' ratios.
      for (let round = 1; round <= ROUNDS; round++) {
        const tfdata = await tfData(python, tfRoot, spec);
        const bare = await bareLoopInChild(files, spec, concurrency, dataDir);
        const run = await measured(() => freshWorkflowRun(dataset, `${dataset.tree}-${round}`));
        const { result, seconds } = run.value;
        const images = result.images.listed;
        const workflow = { wall: images / seconds, cpu: images / run.cpuSeconds };
        rounds.push({ tfdata, bare: { wall: files.length / bare.seconds, cpu: files.length / bare.cpuSeconds }, workflow, bareRss: bare.peakRss, workflowRss: run.peakRss });
        console.log(
          `round ${round}: tf.data ${rate(tfdata)}; bare loop ${rate(rounds.at(-1)!.bare)} (peak RSS ${mib(bare.peakRss)}); workflow ${rate(workflow)} ` +
            `(peak RSS ${mib(run.peakRss)}, worker and workflow in this process, ${Math.round((100 * run.kernelSeconds) / run.cpuSeconds)}% of its CPU in the kernel; ${seconds.toFixed(1)} s, ${result.batches} batches of ${result.batchSize}, ` +
            `${result.images.kept} kept, ${result.images.leftOut} left out: ${JSON.stringify(result.leftOutByReason)}); load average ${load()}`,
        );
      }
      const medianOf = (side: 'tfdata' | 'bare' | 'workflow'): Rate => ({ wall: median(rounds.map((r) => r[side].wall)), cpu: median(rounds.map((r) => r[side].cpu)) });
      const rows: [string, Rate, number][] = [
        ['tf.data image_dataset_from_directory', medianOf('tfdata'), NaN],
        ['bare sharp loop', medianOf('bare'), Math.max(...rounds.map((r) => r.bareRss))],
        ['preprocessDataset workflow, one ml-cpu worker', medianOf('workflow'), Math.max(...rounds.map((r) => r.workflowRss))],
      ];
      if (!SKIP_OBJECTSTORE && dataset.tree === 'fashion-mnist-png') {
        const cached = await runWorkflow(dataset, 'cached');
        const objectStore = await objectStoreRun(dataDir, () => runWorkflow(dataset, 'local'), () => runWorkflow(dataset, 's3'));
        rows.push(
          [`preprocessDataset re-run, cache ${cached.result.cache.hit ? 'hit' : 'MISS'}`, { wall: cached.result.images.listed / cached.seconds, cpu: NaN }, NaN],
          ['preprocessDataset, local artifact store', { wall: objectStore.local, cpu: NaN }, NaN],
          ['preprocessDataset, object store (versitygw)', { wall: objectStore.s3, cpu: NaN }, NaN],
        );
        const s3Ratio = objectStore.s3 / objectStore.local;
        summaries.push(`${dataset.name}: object store / local store ${s3Ratio.toFixed(2)}x (${met(s3Ratio, 0.8)})`);
      }
      console.log(`\n| ${dataset.name} | images/s | images per CPU-second | peak RSS |\n|---|---|---|---|`);
      for (const [what, { wall, cpu }, rss] of rows) console.log(`| ${what} | ${perSecond(wall)} | ${Number.isNaN(cpu) ? '' : perSecond(cpu)} | ${Number.isNaN(rss) ? '' : mib(rss)} |`);
      const vsTfData = median(rounds.map((r) => r.workflow.wall / r.tfdata.wall));
      const vsBare = median(rounds.map((r) => r.workflow.wall / r.bare.wall));
      const cpuVsTfData = median(rounds.map((r) => r.workflow.cpu / r.tfdata.cpu));
      const vsFastestTfData = medianOf('workflow').wall / Math.max(...rounds.map((r) => r.tfdata.wall));
      summaries.push(
        `${dataset.name}: workflow / tf.data ${vsTfData.toFixed(2)}x (${met(vsTfData, 1)}; per CPU-second ${cpuVsTfData.toFixed(2)}x; ` +
          `median workflow / tf.data's fastest round ${vsFastestTfData.toFixed(2)}x); workflow / bare loop ${vsBare.toFixed(2)}x (${met(vsBare, 0.9)}); ` +
          `${concurrency} images in flight in both (${PARALLELISM} batches x ${DECODE_CONCURRENCY})`,
      );
    }

    await cpuWorker.shutdown();
    cpuWorker = undefined;
    if (SKIP_SCALING) {
      console.log('\nscaling left out (BENCH_SKIP_SCALING=1)');
    } else if (availableParallelism() < PINNED_CORES.length || !tasksetWorks()) {
      console.log(`\nscaling left out: it needs taskset and ${PINNED_CORES.length} cores`);
    } else {
      console.log(`\nScaling: ml-cpu worker processes each pinned to one core (taskset -c ${PINNED_CORES.join(', -c ')}); the Temporal server, ` +
        'the workflow worker and this process unpinned, sharing those cores');
      // Inside a pinned worker, decoding and reading threads follow its one core. Two slots: one batch decodes while the
      // other starts or ends (reads its listing, writes its shards); more would leave a worker with several half-done
      // batches, all of them late, when the other runs out of work.
      const workerEnv = { TASK_QUEUES: 'ml-cpu', CPU_ACTIVITY_SLOTS: process.env.BENCH_WORKER_SLOTS ?? '2', TEMPORAL_ML_DECODER_THREADS: '1', VIPS_CONCURRENCY: '1', SDK_METRICS_PORT: '0' };
      const caps = [undefined, ...(CPU_CAP !== undefined && cpuQuotasWork() ? [CPU_CAP] : [])];
      if (CPU_CAP !== undefined && caps.length === 1) console.log('capped workers left out: capping CPU time needs write access to cgroup v1\'s /sys/fs/cgroup/cpu');
      const startPinned = async (core: string, cap: number | undefined): Promise<WorkerProcess> => {
        const worker = await startWorkerProcess(env.address, dataDir, workerEnv, undefined, core);
        if (cap === undefined) return worker;
        const uncap = capCpu(worker.process.pid!, cap, `core-${core}`);
        return { ...worker, stop: () => worker.stop().finally(uncap) };
      };
      // Unwarmed, a worker's one-time cost (see warmUpRun) would weigh on every round's second worker, started anew, and
      // not on the first. Warm-up runs are repeated until `worker` has taken some of their batches.
      const warmUp = async (dataset: BenchDataset, worker: WorkerProcess) => {
        const before = await imagesPreprocessedBy(worker);
        for (let attempt = 1; attempt <= 5; attempt++) {
          await warmUpRun(dataset, String(attempt));
          if ((await imagesPreprocessedBy(worker)) > before) return;
        }
        throw new Error('a pinned worker took no batch of five warm-up runs');
      };
      // Besides the pinned workers: the Temporal server, and this process with the workflow worker.
      const [server] = childProcessesNamed('temporal');
      const unpinned: Record<string, number> = { ...(server ? { 'the Temporal server': server } : {}), 'this process': process.pid };
      /**
       * One round: the dataset with `first` alone, then with a second worker started and warmed for it. Prints both
       * and returns two workers' images per second over one's, unless there were fewer batches than workers.
       */
      const scalingRound = async (dataset: BenchDataset, first: WorkerProcess, cap: number | undefined, label: string, id: string): Promise<number | undefined> => {
        await clearArtifacts();
        const one = await coresBusyDuring({ ...unpinned, 'the worker': first.process.pid! }, () => runWorkflow(dataset, `${id}-one-worker`));
        let second: WorkerProcess | undefined;
        let two: CoresBusy<WorkflowRun>;
        let bySecond: number;
        try {
          second = await startPinned(PINNED_CORES[1]!, cap);
          await warmUp(dataset, second);
          const warm = await imagesPreprocessedBy(second);
          await clearArtifacts();
          two = await coresBusyDuring({ ...unpinned, 'the first worker': first.process.pid!, 'the second': second.process.pid! }, () => runWorkflow(dataset, `${id}-two-workers`));
          bySecond = (await imagesPreprocessedBy(second)) - warm;
        } finally {
          await second?.stop();
        }
        const rateOf = ({ value: { result, seconds } }: typeof one) => result.images.listed / seconds;
        const [oneRate, twoRate] = [rateOf(one), rateOf(two)];
        const busy = ({ processes, rest }: typeof one) => `${Object.entries(processes).map(([name, cores]) => `${name} ${cores.toFixed(2)}`).join(', ')}, the rest of the machine ${rest.toFixed(2)}`;
        // The ratio is the pinned workers' cores busy, two against one, times their images per CPU-second, two against one.
        const workerCores = (run: typeof one) => Object.entries(run.processes).filter(([name]) => !(name in unpinned)).reduce((sum, [, cores]) => sum + cores, 0);
        const coresRatio = workerCores(two) / workerCores(one);
        console.log(`${label}: 1 worker ${perSecond(oneRate)} images/s, 2 workers ${perSecond(twoRate)} images/s, ` +
          `${(twoRate / oneRate).toFixed(2)}x: ${coresRatio.toFixed(2)}x the cores busy, at ${(twoRate / oneRate / coresRatio).toFixed(2)}x the images per CPU-second ` +
          `(the second worker preprocessed ${bySecond} of ${two.value.result.images.listed} images, ${two.value.result.batches} batches); ` +
          `cores busy: one worker ${busy(one)}; two workers ${busy(two)}; load average ${load()}`);
        // With fewer batches than workers one of them has nothing to do: no figure of scaling then.
        return two.value.result.batches >= PINNED_CORES.length ? twoRate / oneRate : undefined;
      };
      for (const dataset of DATASETS) {
        const files = await listTree(join(datasetsRoot, dataset.tree));
        const cores = await twoBusyCores(files, specOf(dataset), concurrency, dataDir);
        console.log(`${dataset.name}: the workflow's decoders in a bare loop pinned to core ${PINNED_CORES[0]} ${perSecond(cores.alone)} images/s; ` +
          `pinned to each core at once ${perSecond(cores.together)} images/s, ${cores.ratio.toFixed(2)}x: what two pinned workers could reach here at most`);
        for (const cap of caps) {
          const workers = cap === undefined ? 'pinned' : `pinned, capped at ${cap} core`;
          const ratios: number[] = [];
          const first = await startPinned(PINNED_CORES[0]!, cap);
          try {
            await warmUp(dataset, first);
            for (let round = 1; round <= ROUNDS; round++) {
              const ratio = await scalingRound(dataset, first, cap, `${dataset.name}, ${workers}, round ${round}`, `${dataset.tree}-${round}`);
              if (ratio !== undefined) ratios.push(ratio);
            }
          } finally {
            await first.stop();
          }
          const limit = cap === undefined ? `two busy cores decode ${cores.ratio.toFixed(2)}x as fast as one here` : 'the Temporal server and the workflow worker have the rest of both cores';
          summaries.push(`${dataset.name}: 2 ml-cpu workers (${workers}) / 1 ` + (ratios.length ? `${median(ratios).toFixed(2)}x (${met(median(ratios), 1.8)}; ${limit})` : 'not measured: fewer batches than workers (lower BENCH_BATCH_SIZE)'));
        }
      }
    }
    console.log(`\n${summaries.join('\n')}\nload average at the end ${load()}; bench:preprocess took ${(process.uptime() / 60).toFixed(1)} minutes`);
  } finally {
    await cpuWorker?.shutdown();
    await pipelineWorker.shutdown();
    await env.teardown();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
