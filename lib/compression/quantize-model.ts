import type { io } from '@tensorflow/tfjs';
import { WEIGHTS_FILE } from '../model-io';
import { dequantizeTensor, quantizeTensor, yieldToEventLoop, type QuantizationDtype, type WeightQuantization, type Yield } from './quantize';

/** Files that are not a TensorFlow.js layers model (a graph model, a missing or malformed model.json or weights file). */
export class NotLayersModelError extends Error {
  override name = 'NotLayersModelError';
}

export interface QuantizationReport {
  dtype: QuantizationDtype;
  tensorsQuantized: number;
  /** Weights left as they were: those not float32. */
  tensorsKept: number;
  /** The largest |original - dequantized| over every quantized weight. */
  maxAbsoluteError: number;
  weightBytesBefore: number;
  weightBytesAfter: number;
}

export interface QuantizeProgress {
  tensorsDone: number;
  tensors: number;
}

export interface QuantizeModelOptions {
  onProgress?: (progress: QuantizeProgress) => void;
  /** Checked between chunks of work: an aborted signal stops the loop with its reason. */
  signal?: AbortSignal;
  /** How the loop gives the event loop a turn between chunks (default: one `setImmediate`). */
  pause?: Yield;
}

type Manifest = io.WeightsManifestEntry & { quantization?: WeightQuantization };

interface DecodedWeight {
  spec: Manifest;
  /** The float32 values of a float32 weight (dequantized if it came quantized); any other weight's bytes as stored. */
  values: Float32Array | Uint8Array;
}

/**
 * Quantizes the weights of a TensorFlow.js layers model given as its files (`model.json` + weight files), returning the
 * files of the same model with every quantized weight in tfjs-converter's manifest format, all weights in one file.
 */
export async function quantizeLayersModel(
  files: Record<string, Uint8Array>,
  dtype: QuantizationDtype,
  options: QuantizeModelOptions = {},
): Promise<{ files: Record<string, Uint8Array>; report: QuantizationReport }> {
  const modelJson = parseModelJson(files);
  const weights = decodeWeights(modelJson, files);
  const pause: Yield = async () => {
    await (options.pause ?? yieldToEventLoop)();
    options.signal?.throwIfAborted();
  };
  const specs: Manifest[] = [];
  const buffers: Uint8Array[] = [];
  const report: QuantizationReport = { dtype, tensorsQuantized: 0, tensorsKept: 0, maxAbsoluteError: 0, weightBytesBefore: 0, weightBytesAfter: 0 };
  for (const [index, { spec, values }] of weights.entries()) {
    await pause();
    // Every float32 weight, biases and batch-norm statistics included, as tfjs-converter's `--quantize_*` flags do:
    // keeping vectors in float32 measured no accuracy gain on the zoo's models and costs ratio (README).
    if (values instanceof Float32Array) {
      const quantized = await quantizeTensor(spec.name, values, dtype, pause);
      specs.push({ ...withoutQuantization(spec), quantization: quantized.quantization });
      buffers.push(new Uint8Array(quantized.data.buffer, quantized.data.byteOffset, quantized.data.byteLength));
      report.tensorsQuantized++;
      report.maxAbsoluteError = Math.max(report.maxAbsoluteError, quantized.maxAbsoluteError);
    } else {
      specs.push(spec);
      buffers.push(values);
      report.tensorsKept++;
    }
    options.onProgress?.({ tensorsDone: index + 1, tensors: weights.length });
  }
  report.weightBytesBefore = weightFileNames(modelJson).reduce((sum, name) => sum + files[name]!.byteLength, 0);
  const weightData = Buffer.concat(buffers);
  report.weightBytesAfter = weightData.byteLength;
  const quantizedJson = { ...modelJson, weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }] };
  return { files: { 'model.json': Buffer.from(JSON.stringify(quantizedJson)), [WEIGHTS_FILE]: weightData }, report };
}

function withoutQuantization(spec: Manifest): Manifest {
  const plain = { ...spec };
  delete plain.quantization;
  return plain;
}

function parseModelJson(files: Record<string, Uint8Array>): io.ModelJSON {
  const raw = files['model.json'];
  if (!raw) throw new NotLayersModelError('the directory has no model.json');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch (err) {
    throw new NotLayersModelError(`model.json is not JSON: ${(err as Error).message}`);
  }
  const model = json as Partial<io.ModelJSON> | null;
  if (typeof model !== 'object' || model === null) throw new NotLayersModelError('model.json is not a JSON object');
  if (model.format !== undefined && model.format !== 'layers-model') {
    throw new NotLayersModelError(`model.json declares format "${String(model.format)}", not a layers model ("layers-model")`);
  }
  const topology = model.modelTopology as { class_name?: unknown; model_config?: { class_name?: unknown } } | undefined;
  if (typeof (topology?.model_config ?? topology)?.class_name !== 'string') {
    throw new NotLayersModelError('model.json has no Keras model topology (modelTopology.class_name)');
  }
  if (!Array.isArray(model.weightsManifest)) throw new NotLayersModelError('model.json has no weightsManifest');
  return model as io.ModelJSON;
}

function weightFileNames(modelJson: io.ModelJSON): string[] {
  return modelJson.weightsManifest.flatMap((group) => group.paths);
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/** Splits the weight files (concatenated in manifest order, as tfjs reads them) into one entry per weight. */
function decodeWeights(modelJson: io.ModelJSON, files: Record<string, Uint8Array>): DecodedWeight[] {
  const parts = weightFileNames(modelJson).map((name) => {
    const file = files[name];
    if (!file) throw new NotLayersModelError(`the weights file ${name} named in model.json is missing`);
    return file;
  });
  const data = Buffer.concat(parts);
  const specs = modelJson.weightsManifest.flatMap((group) => group.weights) as Manifest[];
  const weights: DecodedWeight[] = [];
  let offset = 0;
  for (const spec of specs) {
    const storedAs = spec.quantization?.dtype ?? spec.dtype;
    const bytesPerElement = BYTES_PER_ELEMENT[storedAs];
    if (bytesPerElement === undefined) throw new NotLayersModelError(`weight ${spec.name} is stored as ${storedAs}, which a layers model does not hold`);
    const byteLength = spec.shape.reduce((n, d) => n * d, 1) * bytesPerElement;
    if (offset + byteLength > data.byteLength) throw new NotLayersModelError(`the weights files end before weight ${spec.name}`);
    // A copy: typed-array views need aligned offsets, which concatenated weights do not promise.
    const bytes = new Uint8Array(data.subarray(offset, offset + byteLength));
    offset += byteLength;
    weights.push({ spec, values: spec.dtype === 'float32' ? float32ValuesOf(spec, bytes) : bytes });
  }
  if (offset !== data.byteLength) throw new NotLayersModelError(`the weights files hold ${data.byteLength} bytes, model.json describes ${offset}`);
  return weights;
}

function float32ValuesOf(spec: Manifest, bytes: Uint8Array): Float32Array {
  const quantization = spec.quantization;
  if (!quantization) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const stored = quantization.dtype === 'uint8' ? bytes : new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return dequantizeTensor(stored, quantization);
}
