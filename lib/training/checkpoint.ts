import type { LayersModel, Optimizer, io } from '@tensorflow/tfjs';

type NamedTensor = Awaited<ReturnType<Optimizer['getWeights']>>[number];
import type { ArtifactStore } from '../artifacts';
import { modelFiles, modelFromFiles } from '../model-io';
import type { TensorFlow } from '../tf';

/** Where training stands: enough to continue from the next batch as if never interrupted. */
export interface TrainingState {
  /** 0-based epoch in progress. */
  epoch: number;
  /** Next batch of that epoch. */
  batch: number;
  epochLossSum: number;
  epochAccuracySum: number;
  history: EpochRecord[];
  /** Best value so far of the monitored validation figure (loss by default). */
  bestScore: number | null;
  /** The model of the best epoch so far (1-based), saved when it was scored. */
  bestModel: { uri: string; bytes: number; epoch: number } | null;
  epochsWithoutImprovement: number;
  stoppedEarly: boolean;
  /** Positions training was resumed from, one per interrupted attempt. */
  resumes: { epoch: number; batch: number }[];
}

export interface EpochRecord {
  epoch: number;
  learningRate: number;
  loss: number;
  accuracy: number;
  validationLoss?: number;
  validationAccuracy?: number;
  /** Seconds of the epoch's training loop (its scoring not included). */
  seconds: number;
  /** When the epoch ended, after its scoring and storing its model: ms since the Unix epoch (absent in older records). */
  endedAt?: number;
}

export function initialTrainingState(): TrainingState {
  return {
    epoch: 0,
    batch: 0,
    epochLossSum: 0,
    epochAccuracySum: 0,
    history: [],
    bestScore: null,
    bestModel: null,
    epochsWithoutImprovement: 0,
    stoppedEarly: false,
    resumes: [],
  };
}

/** A checkpoint is one directory artifact: the model in layers format, the optimizer's slots and the state. */
export async function saveCheckpoint(
  tf: TensorFlow,
  store: ArtifactStore,
  model: LayersModel,
  optimizer: Optimizer,
  state: TrainingState,
): Promise<{ uri: string; bytes: number }> {
  const files = {
    ...(await modelFiles(tf, model)),
    ...(await optimizerFiles(tf, optimizer)),
    'state.json': Buffer.from(JSON.stringify(state)),
  };
  const stored = await store.putDirectory(files);
  return { uri: stored.uri, bytes: stored.bytes };
}

/** The optimizer's slots (Adam's step count and moments) as `optimizer.json` (their specs) and `optimizer.bin`. */
export async function optimizerFiles(tf: TensorFlow, optimizer: Optimizer): Promise<Record<string, Uint8Array>> {
  const optimizerWeights = await tf.io.encodeWeights(await optimizer.getWeights());
  return {
    'optimizer.json': Buffer.from(JSON.stringify(optimizerWeights.specs)),
    'optimizer.bin': new Uint8Array(tf.io.CompositeArrayBuffer.join(optimizerWeights.data)),
  };
}

/** The optimizer's slots from the files `optimizerFiles` gave, in the order `Optimizer.setWeights` expects. */
export function optimizerWeightsFromFiles(tf: TensorFlow, files: Record<string, Uint8Array>): NamedTensor[] {
  const specs = JSON.parse(Buffer.from(files['optimizer.json']!).toString('utf8')) as io.WeightsManifestEntry[];
  const decoded = tf.io.decodeWeights(new Uint8Array(files['optimizer.bin']!).buffer, specs);
  // encodeWeights/decodeWeights keep the order getWeights gave, which setWeights expects.
  return specs.map((spec) => ({ name: spec.name, tensor: decoded[spec.name]! }));
}

export interface RestoredCheckpoint {
  model: LayersModel;
  optimizerWeights: NamedTensor[];
  state: TrainingState;
}

export async function loadCheckpoint(tf: TensorFlow, store: ArtifactStore, uri: string): Promise<RestoredCheckpoint> {
  const files = await store.readDirectory(uri);
  return {
    model: await modelFromFiles(tf, files),
    optimizerWeights: optimizerWeightsFromFiles(tf, files),
    state: JSON.parse(files['state.json']!.toString('utf8')) as TrainingState,
  };
}
