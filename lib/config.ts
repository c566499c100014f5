import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';

/** Project settings, read once from the environment. Connection settings are Temporal's own (see workers/connection.ts). */
export interface Settings {
  /** Root of everything the project writes locally (artifacts, built-in datasets, the dev server's database). */
  dataDir: string;
  /** Root of the local artifact store. */
  artifactRoot: string;
  /** `s3://bucket/prefix` of an S3-compatible artifact store shared by every machine; unset: the local store. */
  artifactUrl: string | undefined;
  /** Local cache of remote artifacts, and its size bound (least recently used out). */
  artifactCacheDir: string;
  artifactCacheBytes: number;
  /** Folder datasets named by relative path are read from; nothing outside it is read. */
  datasetsRoot: string;
  /** Task queues this worker process serves. */
  taskQueues: TaskQueue[];
  metricsHost: string;
  metricsPort: number;
  /** Port of the Temporal SDK's own Prometheus exporter; 0 turns it off. */
  sdkMetricsPort: number;
  /** `auto`: native TensorFlow when it loads, else the JS CPU backend; `native`: fail without it; `cpu`: force the JS backend. */
  tfjsBackend: 'auto' | 'native' | 'cpu';
  /** Resource ceilings of this worker: an input may lower them, never raise them. */
  limits: WorkerLimits;
  /** How this worker shares its cores among training jobs. */
  training: TrainingSlots;
  /** How long warm child processes live and what they may keep (see lib/child-task.ts). */
  warmChildren: WarmChildSettings;
  /**
   * Bytes of memory (resident set) a training child may use; data that would not fit is streamed from its shards.
   * null: no budget. An input's `training.memoryBudgetBytes` may lower it, never raise it.
   */
  memoryBudgetBytes: number | null;
  /** Threads decoding images with TensorFlow during preprocessing (TEMPORAL_ML_DECODER_THREADS, default one per core). */
  decoderThreads: number;
}

/** The environment variable that sets `memoryBudgetBytes`. */
export const MEMORY_BUDGET_VARIABLE = 'TEMPORAL_ML_TRAIN_MEMORY_BYTES';

export interface WarmChildSettings {
  /** How long a warm child process waits, idle, for its next task before it exits; 0: one process per task. */
  idleSeconds: number;
  /** Bytes of loaded data (dataset splits) a warm child keeps between tasks. */
  cacheBytes: number;
}

/**
 * N trainers on one machine of C cores: N slots, and about C / N intra-op threads each, so they do not oversubscribe
 * the cores. Unset thread counts leave TensorFlow's default (one thread per core, per trainer).
 */
export interface TrainingSlots {
  /** Concurrent `ml-train` activities (training jobs, each its own child process) in this worker process. */
  slots: number;
  /** Threads one TensorFlow op may use in a training child (`TF_NUM_INTRAOP_THREADS`). */
  intraOpThreads: number | null;
  /** TensorFlow ops a training child runs at once (`TF_NUM_INTEROP_THREADS`). */
  interOpThreads: number | null;
}

export interface WorkerLimits {
  /** Pixels an image's header may claim; larger images are refused before decoding (decompression bombs). */
  maxInputPixels: number;
  /** Bytes of an image file; larger files are refused without being read. */
  maxFileBytes: number;
  /** Bytes of the float32 tensors one preprocessing batch holds. */
  maxBatchTensorBytes: number;
  /** Bytes of an IDX file, on disk and decompressed. */
  maxIdxBytes: number;
  /** Augmented copies per training image. */
  maxAugmentationCopies: number;
  /** Trials one hyperparameter sweep may run. */
  maxSweepTrials: number;
}

/** The environment variable that sets each ceiling, and its default. */
export const WORKER_LIMITS: Record<keyof WorkerLimits, { variable: string; fallback: number }> = {
  maxInputPixels: { variable: 'TEMPORAL_ML_MAX_INPUT_PIXELS', fallback: 64_000_000 },
  maxFileBytes: { variable: 'TEMPORAL_ML_MAX_FILE_BYTES', fallback: 256 * 1024 * 1024 },
  maxBatchTensorBytes: { variable: 'TEMPORAL_ML_MAX_BATCH_TENSOR_BYTES', fallback: 1024 * 1024 * 1024 },
  maxIdxBytes: { variable: 'TEMPORAL_ML_MAX_IDX_BYTES', fallback: 1024 * 1024 * 1024 },
  maxAugmentationCopies: { variable: 'TEMPORAL_ML_MAX_AUGMENTATION_COPIES', fallback: 16 },
  maxSweepTrials: { variable: 'TEMPORAL_ML_MAX_SWEEP_TRIALS', fallback: 10_000 },
};

export const TASK_QUEUES = ['ml-pipeline', 'ml-cpu', 'ml-train'] as const;
export type TaskQueue = (typeof TASK_QUEUES)[number];

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name}=${raw} is not a positive integer.`);
  return value;
}

function workerLimits(): WorkerLimits {
  const entries = Object.entries(WORKER_LIMITS).map(([key, { variable, fallback }]) => [key, positiveInteger(variable, fallback)]);
  return Object.fromEntries(entries) as WorkerLimits;
}

function nonNegativeInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name}=${raw} is not a whole number of 0 or more.`);
  return value;
}

function warmChildren(): WarmChildSettings {
  return {
    idleSeconds: nonNegativeInteger('TEMPORAL_ML_WARM_CHILD_IDLE_SECONDS', 300),
    cacheBytes: nonNegativeInteger('TEMPORAL_ML_WARM_CHILD_CACHE_MB', 1024) * 1024 * 1024,
  };
}

function optionalPositiveInteger(name: string): number | null {
  return process.env[name] ? positiveInteger(name, 1) : null;
}

function trainingSlots(): TrainingSlots {
  return {
    slots: positiveInteger('TEMPORAL_ML_TRAIN_SLOTS', 1),
    intraOpThreads: optionalPositiveInteger('TEMPORAL_ML_TRAIN_INTRA_OP_THREADS'),
    interOpThreads: optionalPositiveInteger('TEMPORAL_ML_TRAIN_INTER_OP_THREADS'),
  };
}

/** The environment a training child gets so that native TensorFlow uses the configured thread counts. */
export function tensorflowThreadsEnv({ intraOpThreads, interOpThreads }: TrainingSlots): NodeJS.ProcessEnv {
  return {
    ...(intraOpThreads ? { TF_NUM_INTRAOP_THREADS: String(intraOpThreads) } : {}),
    ...(interOpThreads ? { TF_NUM_INTEROP_THREADS: String(interOpThreads) } : {}),
  };
}

function integer(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${name}=${raw} is not a valid port number.`);
  return value;
}

/** Where `npm run codec-server` listens, and the only browser origins it answers (the Web UI's). */
export interface CodecServerSettings {
  host: string;
  port: number;
  allowedOrigins: string[];
}

export function codecServerSettings(): CodecServerSettings {
  const origins = (process.env.CODEC_SERVER_ALLOWED_ORIGINS ?? 'http://localhost:8233').split(',').map((o) => o.trim()).filter(Boolean);
  return {
    host: process.env.CODEC_SERVER_HOST ?? '127.0.0.1',
    port: integer('CODEC_SERVER_PORT', 8888),
    allowedOrigins: origins,
  };
}

/** Parses a comma-separated list of task queues; `source` names where it came from in the error. */
export function parseTaskQueues(raw: string, source: string): TaskQueue[] {
  const queues = raw.split(',').map((q) => q.trim()).filter(Boolean);
  const unknown = queues.filter((q) => !(TASK_QUEUES as readonly string[]).includes(q));
  if (unknown.length || queues.length === 0) {
    throw new Error(`${source}=${raw}: each entry must be one of ${TASK_QUEUES.join(', ')}.`);
  }
  return queues as TaskQueue[];
}

function taskQueues(): TaskQueue[] {
  const raw = process.env.TASK_QUEUES;
  return raw ? parseTaskQueues(raw, 'TASK_QUEUES') : [...TASK_QUEUES];
}

function backend(): Settings['tfjsBackend'] {
  const raw = process.env.TFJS_BACKEND ?? 'auto';
  if (raw !== 'auto' && raw !== 'native' && raw !== 'cpu') throw new Error(`TFJS_BACKEND=${raw}: use auto, native or cpu.`);
  return raw;
}

export function loadSettings(): Settings {
  const dataDir = resolve(process.env.TEMPORAL_ML_DATA_DIR ?? '.data');
  return {
    dataDir,
    artifactRoot: resolve(process.env.TEMPORAL_ML_ARTIFACT_ROOT ?? resolve(dataDir, 'artifacts')),
    artifactUrl: process.env.TEMPORAL_ML_ARTIFACT_URL || undefined,
    artifactCacheDir: resolve(dataDir, 'artifact-cache'),
    artifactCacheBytes: positiveInteger('TEMPORAL_ML_ARTIFACT_CACHE_BYTES', 2 * 1024 * 1024 * 1024),
    datasetsRoot: resolve(process.env.TEMPORAL_ML_DATASETS_ROOT ?? resolve(dataDir, 'datasets')),
    taskQueues: taskQueues(),
    metricsHost: process.env.METRICS_HOST ?? '127.0.0.1',
    metricsPort: integer('METRICS_PORT', 9464),
    sdkMetricsPort: integer('SDK_METRICS_PORT', 9465),
    tfjsBackend: backend(),
    limits: workerLimits(),
    training: trainingSlots(),
    warmChildren: warmChildren(),
    memoryBudgetBytes: optionalPositiveInteger(MEMORY_BUDGET_VARIABLE),
    decoderThreads: positiveInteger('TEMPORAL_ML_DECODER_THREADS', availableParallelism()),
  };
}

let cached: Settings | undefined;
export function settings(): Settings {
  cached ??= loadSettings();
  return cached;
}
