import { LocalArtifactStore } from '../artifacts';
import { serveChildTask } from '../child-task';
import { readManifest } from '../datasets/manifest';
import { loadSplit } from '../datasets/shards';
import { modelFromFiles } from '../model-io';
import type { Split } from '../split';
import { tensorflow } from '../tf';
import { accuracyOf, perClassScores, type ClassScores, type ConfusionMatrix } from './classification';
import { measureLatency, type InferenceLatency } from './latency';
import { scoreSplit } from './score';

export interface EvaluateJobInput {
  artifactRoot: string;
  modelUri: string;
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
  modelBytes: number;
  latencyMs: InferenceLatency;
  reportUri: string;
}

export interface EvaluationReport extends Omit<EvaluationSummary, 'reportUri'> {
  modelUri: string;
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

/** Scores a stored model on one split of a dataset, stores the full report and returns a small summary. */
export async function evaluateJob(input: EvaluateJobInput, reportProgress: (p: EvaluationProgress) => void): Promise<EvaluationSummary> {
  const { tf } = tensorflow();
  const store = new LocalArtifactStore(input.artifactRoot);
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

  const modelFiles = await store.readDirectory(input.modelUri);
  const model = await modelFromFiles(tf, modelFiles);
  try {
    progress('model-loaded');
    const data = await loadSplit(tf, store, manifest, input.split);
    try {
      progress('split-loaded');
      const { confusion, loss } = await scoreSplit(tf, model, data, manifest.classes.length, (imagesDone) => progress('predicting', imagesDone, true));
      progress('predicted', data.count);
      const latencyMs = measureLatency(model, data.images, () => progress('measuring-latency', data.count, true));
      progress('latency-measured', data.count);

      const summary: Omit<EvaluationSummary, 'reportUri'> = {
        accuracy: accuracyOf(confusion),
        loss,
        count: data.count,
        parameterCount: model.countParams(),
        modelBytes: Object.values(modelFiles).reduce((n, f) => n + f.byteLength, 0),
        latencyMs,
      };
      const report: EvaluationReport = {
        ...summary,
        modelUri: input.modelUri,
        manifestUri: input.manifestUri,
        split: input.split,
        classes: manifest.classes,
        confusion,
        perClass: perClassScores(confusion),
      };
      const { uri } = await store.putBlob(Buffer.from(JSON.stringify(report, null, 2)), '.json');
      return { ...summary, reportUri: uri };
    } finally {
      tf.dispose([data.images, data.labels]);
    }
  } finally {
    model.dispose();
  }
}

if (require.main === module) serveChildTask(evaluateJob);
