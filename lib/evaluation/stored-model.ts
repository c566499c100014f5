import { basename } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ArtifactStore } from '../artifacts';
import type { ModelFormat } from '../compression/compressed-model';
import { tensorflow } from '../tf';
import { onnxServingModel } from './onnx-serving';
import type { ServingModel } from './serving-model';
import { tfjsServingModel } from './tfjs-serving';

/** A model as the store holds it: a TensorFlow.js layers directory artifact or a `.onnx` blob. */
export interface StoredModel {
  format: ModelFormat;
  uri: string;
}

/** The stored files of a model, by name. */
export async function readStoredModel(store: ArtifactStore, model: StoredModel): Promise<Record<string, Uint8Array>> {
  if (model.format === 'onnx') return { [basename(model.uri)]: await store.read(model.uri) };
  return store.readDirectory(model.uri);
}

export interface StoredSize {
  /** Bytes of the stored files together. */
  bytes: number;
  /** Bytes of the stored files together after gzip (level 9, the files concatenated in name order). */
  gzipBytes: number;
}

export function storedSize(files: Record<string, Uint8Array>): StoredSize {
  const all = Buffer.concat(Object.keys(files).sort().map((name) => files[name]!));
  return { bytes: all.byteLength, gzipBytes: gzipSync(all, { level: 9 }).byteLength };
}

/** The runtime name tfjs serves in: `tfjs-node` on native TensorFlow, `tfjs-cpu` on the JavaScript backend. */
export function tfjsRuntime(): string {
  return tensorflow().backend === 'tensorflow' ? 'tfjs-node' : 'tfjs-cpu';
}

/** Loads the stored files of a model into the runtime its format is served by. */
export function loadServingModel(format: ModelFormat, files: Record<string, Uint8Array>, imageShape: readonly number[]): Promise<ServingModel> {
  if (format === 'onnx') {
    const [file] = Object.values(files);
    return onnxServingModel(file!, imageShape);
  }
  return tfjsServingModel(tensorflow().tf, files, imageShape, tfjsRuntime());
}
