import { openArtifactStore, type ArtifactStore, type ArtifactStoreDescription } from '../artifacts';
import { serveChildTask } from '../child-task';
import type { ModelFormat } from '../compression/compressed-model';
import { cached } from '../child-cache';
import { readManifest, type DatasetManifest } from '../datasets/manifest';
import { loadSplitArrays, splitContentKey, type SplitArrays } from '../datasets/shards';
import type { Split } from '../split';
import { accuracyOf, perClassScores, type ClassScores, type ConfusionMatrix } from './classification';
import { measureLatency, type InferenceLatency } from './latency';
import { scoreSplit } from './score';
import { loadServingModel, readStoredModel, storedSize } from './stored-model';

export interface EvaluateJobInput {
  /** The store to read and write, as the parent process described it. */
  artifacts: ArtifactStoreDescription;
  modelUri: string;
  /** How the model is stored, which picks the runtime that serves it (default `tfjs-layers`). */
  format?: ModelFormat;
  manifestUri: string;
  split: Split;
  /** Least time between progress reports while predicting or timing predictions (default 500 ms). */
  progressIntervalMs?: number;
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
  /** The runtime that served the predictions and was timed: `tfjs-node` (`tfjs-cpu` without native TensorFlow) or `onnxruntime-node`. */
  runtime: string;
  latencyMs: InferenceLatency;
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
 * Scores and times a stored model, in the runtime its format is served by, on one split of a dataset; stores the full
 * report and returns a small summary.
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
  try {
    progress('model-loaded');
    const data = await cachedSplitArrays(store, manifest, input.split);
    progress('split-loaded');
    const { confusion, loss } = await scoreSplit(model, data, manifest.classes.length, (imagesDone) => progress('predicting', imagesDone, true));
    progress('predicted', data.count);
    const latencyMs = await measureLatency(model, data.images, data.count, () => progress('measuring-latency', data.count, true));
    progress('latency-measured', data.count);

    const size = storedSize(modelFiles);
    const summary: Omit<EvaluationSummary, 'reportUri'> = {
      accuracy: accuracyOf(confusion),
      loss,
      count: data.count,
      parameterCount: model.parameterCount,
      nonZeroParameters: model.nonZeroParameters,
      modelBytes: size.bytes,
      gzipBytes: size.gzipBytes,
      runtime: model.runtime,
      latencyMs,
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
    await model.dispose();
  }
}

/** A split's arrays, kept by a warm process for its next evaluations. */
function cachedSplitArrays(store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<SplitArrays> {
  return cached(`arrays ${splitContentKey(manifest, split)}`, async () => {
    const arrays = await loadSplitArrays(store, manifest, split);
    return { value: arrays, bytes: arrays.images.byteLength + arrays.labels.byteLength, dispose: () => undefined };
  });
}

if (require.main === module) serveChildTask(evaluateJob);
