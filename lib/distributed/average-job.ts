import type { io } from '@tensorflow/tfjs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { openArtifactStore, plainNames, type ArtifactStore, type ArtifactStoreDescription, type StoredArtifact } from '../artifacts';
import { serveChildTask } from '../child-task';
import { throttled } from '../throttle';

/** A stored layers model and its weight in the average. */
export interface WeightedModel {
  modelUri: string;
  weight: number;
}

export interface AverageJobInput {
  /** The store to read and write, as the parent process described it. */
  artifacts: ArtifactStoreDescription;
  /** Weights are used as given: they should sum to 1. */
  models: WeightedModel[];
}

export interface AverageProgress {
  bytes: number;
  of: number;
}

/** The models cannot be averaged (different layers, shapes or dtypes): retrying cannot help. */
export class IncompatibleModelsError extends Error {
  override name = 'IncompatibleModelsError';
}

/** Values read from every model per step: 256 KiB of float32 each, whatever the models' size. */
const CHUNK_VALUES = 64 * 1024;
const WEIGHTS_FILE = 'weights.bin';

/**
 * Writes the weighted average of layers models with identical weight manifests: model.json of the first, and every
 * weight the weighted sum of the models' values. The weight files are streamed chunk by chunk, so memory holds one
 * chunk per model, never a model. Stored content-addressed: written to a scratch folder, then published whole.
 */
export async function averageJob(input: AverageJobInput, report: (progress: AverageProgress) => void): Promise<StoredArtifact> {
  const store = openArtifactStore(input.artifacts);
  const manifests = await Promise.all(input.models.map(async ({ modelUri }) => ({ modelUri, json: await store.readJson<io.ModelJSON>(`${modelUri}/model.json`) })));
  const specs = checkSameWeights(manifests);
  const values = specs.reduce((sum, spec) => sum + spec.shape.reduce((a, b) => a * b, 1), 0);
  // Every reader that opened is closed, whatever fails: a warm averaging process serves the next round with what is left open.
  const opened = await Promise.allSettled(manifests.map(({ modelUri, json }) => WeightReader.open(store, modelUri, json, values * 4)));
  const readers = opened.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  let out: FileHandle | undefined;
  let folder: string;
  try {
    const failed = opened.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    folder = await store.scratchFolder();
    out = await open(join(folder, WEIGHTS_FILE), 'w');
    const progress = throttled(report, { everyItems: 4, everyMs: 500 });
    const sum = new Float64Array(CHUNK_VALUES);
    const chunk = new Float32Array(CHUNK_VALUES);
    for (let start = 0; start < values; start += CHUNK_VALUES) {
      const length = Math.min(CHUNK_VALUES, values - start);
      sum.fill(0, 0, length);
      for (const [i, reader] of readers.entries()) {
        await reader.read(start * 4, chunk.subarray(0, length));
        const weight = input.models[i]!.weight;
        for (let v = 0; v < length; v++) sum[v]! += weight * chunk[v]!;
      }
      const averaged = Float32Array.from(sum.subarray(0, length));
      await out.write(new Uint8Array(averaged.buffer));
      progress({ bytes: (start + length) * 4, of: values * 4 });
    }
  } finally {
    await out?.close();
    await Promise.all(readers.map((reader) => reader.close()));
  }
  const modelJson = { ...manifests[0]!.json, weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }] };
  await store.putNamed(join(folder, 'model.json'), JSON.stringify(modelJson));
  return store.putDirectoryFrom(folder);
}

/** The weight specs every model shares, in order; throws naming the first model that differs from the first one. */
function checkSameWeights(manifests: { modelUri: string; json: io.ModelJSON }[]): io.WeightsManifestEntry[] {
  const describe = (spec: io.WeightsManifestEntry) => `${spec.name} ${spec.dtype ?? 'float32'} [${spec.shape}]`;
  const [first, ...rest] = manifests.map(({ modelUri, json }) => ({ modelUri, specs: json.weightsManifest.flatMap((group) => group.weights) }));
  for (const spec of first!.specs) {
    if ((spec.dtype ?? 'float32') !== 'float32' || spec.quantization) {
      throw new IncompatibleModelsError(`${first!.modelUri}: weight ${describe(spec)} is not plain float32; only float32 weights can be averaged`);
    }
  }
  // TensorFlow.js numbers unnamed layers per process (dense_Dense3, dense_Dense7): the same model built in two training
  // processes differs in those numbers only, so they are left out of the comparison.
  const comparable = (entry: string) => entry.replace(/\d+(?=[/ ])/g, '');
  const expected = first!.specs.map(describe);
  for (const { modelUri, specs } of rest) {
    const found = specs.map((spec) => describe(spec) + (spec.quantization ? ' quantized' : ''));
    const at = expected.findIndex((entry, i) => found[i] === undefined || comparable(entry) !== comparable(found[i]));
    if (at !== -1 || found.length !== expected.length) {
      const index = at === -1 ? expected.length : at;
      throw new IncompatibleModelsError(
        `${modelUri} has other weights than ${first!.modelUri}: weight ${index} is ${found[index] ?? 'missing'}, expected ${expected[index] ?? 'none'}`,
      );
    }
  }
  return first!.specs;
}

/** Reads a model's weight values by byte offset across its weight files, as if they were one. */
class WeightReader {
  private constructor(private readonly files: { handle: FileHandle; bytes: number }[]) {}

  static async open(store: ArtifactStore, modelUri: string, json: io.ModelJSON, bytes: number): Promise<WeightReader> {
    const paths = json.weightsManifest.flatMap((group) => group.paths);
    const files: { handle: FileHandle; bytes: number }[] = [];
    try {
      const folder = await store.localPath(modelUri);
      for (const path of paths) {
        const handle = await open(join(folder, plainNames([path])[0]!), 'r');
        files.push({ handle, bytes: (await handle.stat()).size });
      }
    } catch (err) {
      await Promise.all(files.map((file) => file.handle.close()));
      throw err;
    }
    const reader = new WeightReader(files);
    const stored = files.reduce((sum, file) => sum + file.bytes, 0);
    if (stored !== bytes) {
      await reader.close();
      throw new IncompatibleModelsError(`${modelUri}: its weight files hold ${stored} bytes, its manifest ${bytes}`);
    }
    return reader;
  }

  async read(offset: number, into: Float32Array): Promise<void> {
    const target = new Uint8Array(into.buffer, into.byteOffset, into.byteLength);
    let filled = 0;
    let fileStart = 0;
    for (const file of this.files) {
      const position = offset + filled - fileStart;
      if (filled < target.length && position < file.bytes) {
        const length = Math.min(target.length - filled, file.bytes - position);
        const { bytesRead } = await file.handle.read(target, filled, length, position);
        if (bytesRead !== length) throw new Error(`short read of a weight file: ${bytesRead} of ${length} bytes`);
        filled += length;
      }
      fileStart += file.bytes;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((file) => file.handle.close()));
  }
}

if (require.main === module) serveChildTask(averageJob);
