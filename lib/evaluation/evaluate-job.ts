import { openArtifactStore, type ArtifactStore, type ArtifactStoreDescription } from '../artifacts';
import { serveChildTask } from '../child-task';
import type { ModelFormat } from '../compression/compressed-model';
import { cached } from '../child-cache';
import { settings } from '../config';
import { readManifest, type DatasetManifest } from '../datasets/manifest';
import { ShardRowReader } from '../datasets/shard-rows';
import { loadSplitArrays, loadSplitLabels, splitContentKey, type SplitArrays } from '../datasets/shards';
import type { Split } from '../split';
import { bytesToLoad, chooseLoading, sequentialBatches, type DataLoading } from '../training/split-feed';
import { accuracyOf, perClassScores, type ClassScores, type ConfusionMatrix } from './classification';
import { measureLatency, type InferenceLatency } from './latency';
import { scoreSplit, type ImageBatch } from './score';
import { loadServingModel, readStoredModel, storedSize } from './stored-model';

export interface EvaluateJobInput {
  /** The store to read and write, as the parent process described it. */
  artifacts: ArtifactStoreDescription;
  modelUri: string;
  /** How the model is stored, which picks the runtime that serves it (default `tfjs-layers`). */
  format?: ModelFormat;
  manifestUri: string;
  split: Split;
  /** Time predictions (default true): scoring that only tracks accuracy, such as a training round's, leaves it out. */
  measureLatency?: boolean;
  /** Least time between progress reports while predicting or timing predictions (default 500 ms). */
  progressIntervalMs?: number;
  /**
   * Load the split (`memory`) or read it from its shards batch by batch (`stream`); `auto` (default) streams when
   * loading it would not fit the worker's memory budget (`TEMPORAL_ML_TRAIN_MEMORY_BYTES`).
   */
  dataLoading?: 'auto' | DataLoading;
}

export interface EvaluationSummary {
  accuracy: number;
  loss: number;
  count: number;
  parameterCount: number;
  nonZeroParameters: number;
  /** Bytes of the stored model files, as they are and gzipped together. */
  modelBytes: number;
  gzipBytes: number;
  /** The runtime that served the predictions (and was timed): `tfjs-node` (`tfjs-cpu` without native TensorFlow) or `onnxruntime-node`. */
  runtime: string;
  /** null when the evaluation was asked not to time predictions (`measureLatency: false`). */
  latencyMs: InferenceLatency | null;
  /** Whether the split was loaded whole or streamed from its shards. */
  dataLoading: DataLoading;
  reportUri: string;
}

export interface EvaluationReport extends Omit<EvaluationSummary, 'reportUri'> {
  modelUri: string;
  format: ModelFormat;
  manifestUri: string;
  split: Split;
  classes: string[];
  confusion: ConfusionMatrix;
  perClass: ClassScores[];
}

export interface EvaluationProgress {
  stage: 'model-loaded' | 'split-loaded' | 'predicting' | 'predicted' | 'measuring-latency' | 'latency-measured';
  imagesDone: number;
  images: number;
}

/** The split asked for has no images: evaluating again cannot help. */
export class EmptySplitError extends Error {
  override name = 'EmptySplitError';
}

const PROGRESS_INTERVAL_MS = 500;

/**
 * Scores a stored model, in the runtime its format is served by, on one split of a dataset, and times its predictions
 * unless asked not to; stores the full report and returns a small summary.
 */
export async function evaluateJob(input: EvaluateJobInput, reportProgress: (p: EvaluationProgress) => void): Promise<EvaluationSummary> {
  const store = openArtifactStore(input.artifacts);
  const manifest = await readManifest(store, input.manifestUri);
  const images = manifest.counts[input.split];
  if (!images) throw new EmptySplitError(`the dataset has no ${input.split} images to evaluate on`);
  const reportEveryMs = input.progressIntervalMs ?? PROGRESS_INTERVAL_MS;
  let lastReportAt = -Infinity;
  /** Reports a stage; a `frequent` one (from within a loop) at most every `reportEveryMs`. */
  const progress = (stage: EvaluationProgress['stage'], imagesDone = 0, frequent = false) => {
    const now = performance.now();
    if (frequent && now - lastReportAt < reportEveryMs) return;
    lastReportAt = now;
    reportProgress({ stage, imagesDone, images });
  };

  const format = input.format ?? 'tfjs-layers';
  const modelFiles = await readStoredModel(store, { format, uri: input.modelUri });
  const model = await loadServingModel(format, modelFiles, manifest.shape);
  let data: EvaluationData | undefined;
  try {
    progress('model-loaded');
    const rowValues = manifest.shape.reduce((a, b) => a * b, 1);
    const toLoad = bytesToLoad([splitArraysKey(manifest, input.split)], images, rowValues, PREDICT_BATCH);
    const loading = chooseLoading(input.dataLoading ?? 'auto', settings().memoryBudgetBytes, process.memoryUsage().rss, toLoad);
    data = loading === 'memory' ? await cachedSplitArrays(store, manifest, input.split) : await streamedSplit(store, manifest, input.split);
    progress('split-loaded');
    const { confusion, loss } = await scoreSplit(model, data.batches(), manifest.classes.length, (imagesDone) => progress('predicting', imagesDone, true));
    progress('predicted', images);
    let latencyMs: InferenceLatency | null = null;
    if (input.measureLatency ?? true) {
      const first = await data.first(Math.min(LATENCY_BATCH, images));
      latencyMs = await measureLatency(model, first, Math.min(LATENCY_BATCH, images), () => progress('measuring-latency', images, true));
      progress('latency-measured', images);
    }

    const size = storedSize(modelFiles);
    const summary: Omit<EvaluationSummary, 'reportUri'> = {
      accuracy: accuracyOf(confusion),
      loss,
      count: images,
      parameterCount: model.parameterCount,
      nonZeroParameters: model.nonZeroParameters,
      modelBytes: size.bytes,
      gzipBytes: size.gzipBytes,
      runtime: model.runtime,
      latencyMs,
      dataLoading: loading,
    };
    const report: EvaluationReport = {
      ...summary,
      modelUri: input.modelUri,
      format,
      manifestUri: input.manifestUri,
      split: input.split,
      classes: manifest.classes,
      confusion,
      perClass: perClassScores(confusion),
    };
    const { uri } = await store.putBlob(Buffer.from(JSON.stringify(report, null, 2)), '.json');
    return { ...summary, reportUri: uri };
  } finally {
    // A warm process serves the next evaluation: the model goes even when closing the split fails.
    try {
      await data?.close();
    } finally {
      await model.dispose();
    }
  }
}

/** Images per `predict` call: small enough that progress is reported often, large enough to keep the cores busy. */
const PREDICT_BATCH = 256;
/** Images of the batch whose inference latency is timed. */
const LATENCY_BATCH = 256;
/** Bytes of float32 images one streamed batch holds at most (fewer than PREDICT_BATCH images when they are large). */
const STREAMED_BATCH_BYTES = 16 * 1024 * 1024;

/** One split's images for scoring, batch by batch, and its first images for timing. */
interface EvaluationData {
  batches(): AsyncIterable<ImageBatch>;
  first(count: number): Promise<Float32Array>;
  close(): Promise<void>;
}

const splitArraysKey = (manifest: DatasetManifest, split: Split) => `arrays ${splitContentKey(manifest, split)}`;

/** A split's arrays, kept by a warm process for its next evaluations. */
async function cachedSplitArrays(store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<EvaluationData> {
  const data = await cached<SplitArrays>(splitArraysKey(manifest, split), async () => {
    const arrays = await loadSplitArrays(store, manifest, split);
    return { value: arrays, bytes: arrays.images.byteLength + arrays.labels.byteLength, dispose: () => undefined };
  });
  const rowValues = data.images.length / data.count;
  return {
    async *batches() {
      for (const rows of sequentialBatches(data.count, PREDICT_BATCH)) {
        const [start, end] = [rows[0]!, rows[0]! + rows.length];
        yield { images: data.images.subarray(start * rowValues, end * rowValues), labels: data.labels.subarray(start, end) };
      }
    },
    first: async (count) => data.images.subarray(0, count * rowValues),
    close: async () => undefined,
  };
}

/** A split read from its shard files a batch at a time (two batches ahead), under a memory budget; only labels are loaded. */
async function streamedSplit(store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<EvaluationData> {
  const labels = await loadSplitLabels(store, manifest, split);
  const reader = await ShardRowReader.open(store, manifest, split);
  const batchSize = Math.max(1, Math.min(PREDICT_BATCH, Math.floor(STREAMED_BATCH_BYTES / (4 * reader.rowValues))));
  return {
    async *batches() {
      let start = 0;
      for await (const images of reader.batches(sequentialBatches(reader.count, batchSize), 2)) {
        const count = images.length / reader.rowValues;
        yield { images, labels: labels.subarray(start, start + count) };
        start += count;
      }
    },
    first: (count) => reader.read(Int32Array.from({ length: count }, (_, i) => i)),
    close: () => reader.close(),
  };
}

if (require.main === module) serveChildTask(evaluateJob);
