import type { io } from '@tensorflow/tfjs';
import { artifactStore, ArtifactPathError, type ArtifactStore } from '../lib/artifacts';
import type { CompressedModel } from '../lib/compression/compressed-model';
import { PruningScheduleError, scheduleForRun, type PolynomialDecay } from '../lib/compression/sparsity-schedule';
import { checkPrunableTopology, unitsBeforeAndAfter, UnsupportedModelError } from '../lib/compression/structured-pruning';
import { InvalidDatasetError, readManifest } from '../lib/datasets/manifest';
import type { PruneVariant, StructuredPruneVariant } from '../lib/schemas/compression';
import { modelSpecSchema, trainingSpecSchema, type TrainingSpec } from '../lib/schemas/model';
import { invalidInput } from '../lib/validate';
import { runTraining } from './training';

export interface PruneModelInput {
  modelName: string;
  /** The stored TensorFlow.js layers model to prune. */
  modelUri: string;
  /** The dataset fine-tuning trains on (its training split) and scores each epoch on (its validation split). */
  manifestUri: string;
  variant: PruneVariant | StructuredPruneVariant;
}

/**
 * Prunes a stored model and fine-tunes it, through the training machinery (child process, checkpoints in heartbeats,
 * resume after a crash or on another worker). Unstructured pruning returns the dense model with its pruned weights
 * exactly zero, the sparse encoding as an alternate, and the per-layer sparsity in `details`; structured pruning
 * returns the smaller rebuilt model and each hidden layer's units before and after.
 */
export async function pruneModel(input: PruneModelInput): Promise<CompressedModel> {
  const store = artifactStore();
  const { variant } = input;
  const source = await readModelTopology(store, input.modelUri, 'modelUri');
  const training = trainingSpecSchema.parse({ ...variant.fineTuning, earlyStopping: null });
  const fineTune = (extension: Parameters<typeof runTraining>[0]['extension']) =>
    runTraining({
      modelName: input.modelName,
      manifestUri: input.manifestUri,
      // Not built: the model to train is the one at initialModelUri.
      model: modelSpecSchema.parse({}),
      training,
      initialModelUri: input.modelUri,
      extension,
    });

  if (variant.method === 'prune') {
    const schedule = await scheduleFor(store, input.manifestUri, variant, training);
    const result = await fineTune({ kind: 'prune', schedule });
    const details = result.extension!;
    const sparse = details.sparse as { uri: string; bytes: number; gzipBytes: number };
    return {
      format: 'tfjs-layers',
      uri: result.modelUri,
      bytes: result.modelBytes,
      alternates: [{ label: 'sparse', uri: sparse.uri, bytes: sparse.bytes, gzipBytes: sparse.gzipBytes }],
      details: { method: variant.method, ...details, fineTuning: fineTuningSummary(result) },
    };
  }

  try {
    checkPrunableTopology(source);
  } catch (err) {
    if (err instanceof UnsupportedModelError) throw invalidInput('modelUri', err.message);
    throw err;
  }
  const result = await fineTune({ kind: 'structured-prune', fraction: variant.fraction });
  return {
    format: 'tfjs-layers',
    uri: result.modelUri,
    bytes: result.modelBytes,
    details: {
      method: variant.method,
      fraction: variant.fraction,
      layers: unitsBeforeAndAfter(source, await readModelTopology(store, result.modelUri, 'modelUri')),
      parameterCount: result.parameterCount,
      fineTuning: fineTuningSummary(result),
    },
  };
}

function fineTuningSummary(result: Awaited<ReturnType<typeof runTraining>>) {
  return { epochs: result.history.length, validationAccuracy: result.bestEpoch.validationAccuracy ?? null, resumes: result.resumes };
}

/** The `modelTopology` of the layers model stored at `uri`, or a user error naming `field`. */
async function readModelTopology(store: ArtifactStore, uri: string, field: string): Promise<io.ModelJSON['modelTopology']> {
  let modelJson: Partial<io.ModelJSON> & { format?: string };
  try {
    modelJson = await store.readJson(`${uri}/model.json`);
  } catch (err) {
    if (err instanceof ArtifactPathError) throw invalidInput(field, err.message);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw invalidInput(field, `no TensorFlow.js layers model (model.json) at ${uri}`);
    }
    if (err instanceof SyntaxError) throw invalidInput(field, `${uri}/model.json is not valid JSON`);
    throw err;
  }
  if (modelJson.format !== 'layers-model' || !modelJson.modelTopology) throw invalidInput(field, `${uri} is not a TensorFlow.js layers model`);
  return modelJson.modelTopology;
}

/** The pruning schedule for this fine-tuning run, whose length the training split's size sets. */
async function scheduleFor(store: ArtifactStore, manifestUri: string, variant: PruneVariant, training: TrainingSpec): Promise<PolynomialDecay> {
  let trainCount: number;
  try {
    trainCount = (await readManifest(store, manifestUri)).counts.train;
  } catch (err) {
    if (err instanceof InvalidDatasetError || err instanceof ArtifactPathError) throw invalidInput('manifestUri', err.message);
    throw err;
  }
  const steps = training.epochs * Math.ceil(trainCount / training.batchSize);
  try {
    const { initialSparsity, finalSparsity, beginStep, endStep, frequency, power } = variant;
    return scheduleForRun({ initialSparsity, finalSparsity, beginStep, endStep, frequency, power }, steps);
  } catch (err) {
    if (err instanceof PruningScheduleError) throw invalidInput(`variant.${err.field}`, err.message);
    throw err;
  }
}
