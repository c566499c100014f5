import { gzipSync } from 'node:zlib';
import type { LayersModel, io } from '@tensorflow/tfjs';
import { modelFromFiles } from '../model-io';
import type { TensorFlow } from '../tf';

/**
 * A sparse encoding of a TensorFlow.js layers model whose weights are mostly exact zeros, as a directory of three files:
 * - `dense-model.json`: the dense model's `model.json`, unchanged;
 * - `sparse.json`: `{ format, weightsFile, tensors: [{ name, size, nonZero }] }`, the tensors in weights-manifest order;
 * - `weights.sparse`: for each tensor, a bitmask of ceil(size / 8) bytes (bit i, least significant first, set when
 *   element i is not zero), then the non-zero float32 values of all tensors in order, byte-shuffled (every value's
 *   first little-endian byte, then every second byte, ...), so that gzip finds the runs in the sign-and-exponent bytes.
 * Decoding restores the dense `model.json` and weights file byte for byte (a zero is a value whose four bytes are 0).
 */
export const SPARSE_FORMAT = 'temporal-ml-sparse-float32/1';
const TOPOLOGY_FILE = 'dense-model.json';
const INDEX_FILE = 'sparse.json';
const DATA_FILE = 'weights.sparse';
const BYTES_PER_VALUE = 4;

interface SparseIndex {
  format: typeof SPARSE_FORMAT;
  weightsFile: string;
  tensors: { name: string; size: number; nonZero: number }[];
}

/** The one weights file and its float32 tensors, as the project's `saveModel` writes them. */
function denseWeights(modelJson: io.ModelJSON): { weightsFile: string; specs: io.WeightsManifestEntry[] } {
  const [group, ...others] = modelJson.weightsManifest;
  if (!group || others.length > 0 || group.paths.length !== 1) throw new Error('the sparse encoding takes a model with exactly one weights file');
  for (const spec of group.weights) {
    if (spec.dtype !== 'float32' || spec.quantization) throw new Error(`weight ${spec.name} is not plain float32; the sparse encoding takes float32 weights`);
  }
  return { weightsFile: group.paths[0]!, specs: group.weights };
}

const sizeOf = (shape: number[]) => shape.reduce((product, dim) => product * dim, 1);
const isZeroAt = (bytes: Uint8Array, offset: number) => (bytes[offset]! | bytes[offset + 1]! | bytes[offset + 2]! | bytes[offset + 3]!) === 0;

/** The sparse encoding of the files `modelFiles` gave. */
export function encodeSparseModel(files: Record<string, Uint8Array>): Record<string, Uint8Array> {
  const topology = files['model.json']!;
  const { weightsFile, specs } = denseWeights(JSON.parse(Buffer.from(topology).toString('utf8')) as io.ModelJSON);
  const weights = files[weightsFile]!;
  const sizes = specs.map((spec) => sizeOf(spec.shape));
  if (sizes.reduce((a, b) => a + b, 0) * BYTES_PER_VALUE !== weights.byteLength) throw new Error(`${weightsFile} does not hold the tensors model.json lists`);

  const masks = sizes.map((size) => new Uint8Array(Math.ceil(size / 8)));
  const nonZeroOffsets: number[] = [];
  const nonZeroCounts = sizes.map(() => 0);
  let offset = 0;
  sizes.forEach((size, t) => {
    for (let i = 0; i < size; i++, offset += BYTES_PER_VALUE) {
      if (isZeroAt(weights, offset)) continue;
      masks[t]![i >> 3]! |= 1 << (i & 7);
      nonZeroOffsets.push(offset);
      nonZeroCounts[t]!++;
    }
  });
  const count = nonZeroOffsets.length;
  const values = new Uint8Array(count * BYTES_PER_VALUE);
  nonZeroOffsets.forEach((source, j) => {
    for (let b = 0; b < BYTES_PER_VALUE; b++) values[b * count + j] = weights[source + b]!;
  });
  const index: SparseIndex = {
    format: SPARSE_FORMAT,
    weightsFile,
    tensors: specs.map((spec, t) => ({ name: spec.name, size: sizes[t]!, nonZero: nonZeroCounts[t]! })),
  };
  return { [TOPOLOGY_FILE]: topology, [INDEX_FILE]: Buffer.from(JSON.stringify(index)), [DATA_FILE]: Buffer.concat([...masks, values]) };
}

/** The dense layers-format files (`model.json` and its weights file) a sparse encoding was made from, byte for byte. */
export function decodeSparseModel(files: Record<string, Uint8Array>): Record<string, Uint8Array> {
  const index = JSON.parse(Buffer.from(files[INDEX_FILE]!).toString('utf8')) as SparseIndex;
  if (index.format !== SPARSE_FORMAT) throw new Error(`not a ${SPARSE_FORMAT} encoding (format "${index.format}")`);
  const data = files[DATA_FILE]!;
  const count = index.tensors.reduce((sum, tensor) => sum + tensor.nonZero, 0);
  let maskOffset = 0;
  const valuesOffset = index.tensors.reduce((sum, tensor) => sum + Math.ceil(tensor.size / 8), 0);
  if (data.byteLength !== valuesOffset + count * BYTES_PER_VALUE) throw new Error(`${DATA_FILE} does not hold what ${INDEX_FILE} lists`);

  const weights = new Uint8Array(index.tensors.reduce((sum, tensor) => sum + tensor.size, 0) * BYTES_PER_VALUE);
  let target = 0;
  let j = 0;
  for (const tensor of index.tensors) {
    for (let i = 0; i < tensor.size; i++, target += BYTES_PER_VALUE) {
      if ((data[maskOffset + (i >> 3)]! & (1 << (i & 7))) === 0) continue;
      for (let b = 0; b < BYTES_PER_VALUE; b++) weights[target + b] = data[valuesOffset + b * count + j]!;
      j++;
    }
    maskOffset += Math.ceil(tensor.size / 8);
  }
  return { 'model.json': files[TOPOLOGY_FILE]!, [index.weightsFile]: weights };
}

/** Loads a sparse-encoded model as the dense model it was made from. */
export function loadSparseModel(tf: TensorFlow, files: Record<string, Uint8Array>): Promise<LayersModel> {
  return modelFromFiles(tf, decodeSparseModel(files));
}

/** Bytes of a set of files, and the bytes of each gzipped (default level), summed: what storing or serving them costs. */
export function filesSize(files: Record<string, Uint8Array>): { bytes: number; gzipBytes: number } {
  const contents = Object.values(files);
  return { bytes: contents.reduce((sum, file) => sum + file.byteLength, 0), gzipBytes: contents.reduce((sum, file) => sum + gzipSync(file).byteLength, 0) };
}
