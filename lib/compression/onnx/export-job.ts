import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { openArtifactStore, type ArtifactStore, type ArtifactStoreDescription } from '../../artifacts';
import { serveChildTask } from '../../child-task';
import { readManifest } from '../../datasets/manifest';
import { loadSplit } from '../../datasets/shards';
import type { Int8Variant, OnnxVariant } from '../../schemas/compression';
import { tensorflow } from '../../tf';
import type { CompressedModel } from '../compressed-model';
import { calibrate } from './calibrate';
import { floatGraph } from './float-graph';
import { OPSET } from './graph-builder';
import { int8Graph, type ActivationRanges } from './int8-graph';
import { readLayersModel, UnsupportedLayerError, type InferenceModel } from './layers-model';
import { decodeModel, encodeModel, type ModelProto } from './onnx-proto';

export interface ExportJobInput {
  /** The store to read and write, as the parent process described it. */
  artifacts: ArtifactStoreDescription;
  modelUri: string;
  manifestUri: string;
  variant: OnnxVariant | Int8Variant;
}

export interface ExportProgress {
  stage: 'model-read' | 'calibrating' | 'stored';
  imagesDone: number;
  images: number;
}

/** Exports a stored layers model to ONNX (float32, or int8 with activations calibrated on training images) and stores it. */
export async function exportJob(input: ExportJobInput, reportProgress: (progress: ExportProgress) => void): Promise<CompressedModel> {
  const { tf } = tensorflow();
  const store = openArtifactStore(input.artifacts);
  const model = readLayersModel(tf, await readModelFiles(store, input.modelUri));
  const { variant } = input;
  const images = variant.method === 'int8' ? variant.calibration.samples : 0;
  reportProgress({ stage: 'model-read', imagesDone: 0, images });

  let graph: { model: ModelProto; opCounts: Record<string, number> };
  let details: Record<string, unknown> = {};
  if (variant.method === 'onnx') graph = floatGraph(model);
  else {
    const ranges = await calibrationRanges(tf, store, input.manifestUri, model, variant, (imagesDone) => reportProgress({ stage: 'calibrating', imagesDone, images }));
    graph = int8Graph(model, ranges, variant);
    const { method, percentile } = variant.calibration;
    details = {
      activations: variant.activations,
      quantizedFormat: variant.format,
      calibration: { method, samples: ranges.samples, ...(method === 'percentile' ? { percentile } : {}) },
    };
  }
  const bytes = encodeModel(graph.model);
  const stored = await store.putBlob(bytes, '.onnx');
  reportProgress({ stage: 'stored', imagesDone: images, images });
  return {
    format: 'onnx',
    uri: stored.uri,
    bytes: stored.bytes,
    details: { opset: OPSET, nodes: graph.opCounts, kernels: await optimizedOpCounts(bytes), ...details },
  };
}

async function readModelFiles(store: ArtifactStore, modelUri: string): Promise<Record<string, Uint8Array>> {
  try {
    return await store.readDirectory(modelUri);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UnsupportedLayerError(`no TensorFlow.js layers model (a directory with model.json) at ${modelUri}`);
    throw err;
  }
}

/** Activation ranges measured on the first `calibration.samples` training images (all of them when there are fewer). */
async function calibrationRanges(
  tf: ReturnType<typeof tensorflow>['tf'],
  store: ArtifactStore,
  manifestUri: string,
  model: InferenceModel,
  variant: Int8Variant,
  onBatch: (imagesDone: number) => void,
): Promise<ActivationRanges & { samples: number }> {
  const manifest = await readManifest(store, manifestUri);
  const data = await loadSplit(tf, store, manifest, 'train');
  const samples = Math.min(variant.calibration.samples, data.count);
  const images = tf.tidy(() => data.images.slice(0, samples).dataSync() as Float32Array);
  tf.dispose([data.images, data.labels]);
  return { ...(await calibrate(model, images, samples, variant.calibration, onBatch)), samples };
}

/**
 * The kernels onnxruntime runs the model with, read from the graph its optimizer writes: shows that the integer
 * graphs really run as QLinearConv/QGemm (rather than dequantizing to float).
 */
async function optimizedOpCounts(bytes: Uint8Array): Promise<Record<string, number>> {
  const dir = await mkdtemp(join(tmpdir(), 'onnx-optimized-'));
  try {
    const optimizedModelFilePath = join(dir, 'model.onnx');
    const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'extended', optimizedModelFilePath });
    await session.release();
    const counts: Record<string, number> = {};
    for (const node of decodeModel(await readFile(optimizedModelFilePath)).graph.node) counts[node.opType] = (counts[node.opType] ?? 0) + 1;
    return counts;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) serveChildTask(exportJob);
