import { Context } from '@temporalio/activity';
import { ArtifactPathError, artifactStore } from '../lib/artifacts';
import type { CompressedModel } from '../lib/compression/compressed-model';
import { Float16RangeError, NonFiniteWeightError } from '../lib/compression/quantize';
import { NotLayersModelError, quantizeLayersModel } from '../lib/compression/quantize-model';
import type { QuantizeVariant } from '../lib/schemas/compression';
import { invalidInput } from '../lib/validate';

export interface QuantizeWeightsInput {
  modelName: string;
  modelUri: string;
  variant: QuantizeVariant;
}

/**
 * Stores a copy of a TensorFlow.js layers model with its weights quantized (float16, uint8 or uint16) in the format
 * stock `tf.loadLayersModel` reads. Plain loops over typed arrays, no tensors: they run here, giving the event loop a
 * turn between chunks and heartbeating per weight.
 */
export async function quantizeWeights(input: QuantizeWeightsInput): Promise<CompressedModel> {
  const context = Context.current();
  const store = artifactStore();
  const files = await store.readDirectory(input.modelUri).catch((err: NodeJS.ErrnoException) => {
    if (err instanceof ArtifactPathError) throw invalidInput('modelUri', err.message);
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw invalidInput('modelUri', `${input.modelUri} is not a stored model directory`);
    throw err;
  });
  try {
    const { files: quantized, report } = await quantizeLayersModel(files, input.variant.dtype, {
      signal: context.cancellationSignal,
      onProgress: (progress) => context.heartbeat(progress),
    });
    const stored = await store.putDirectory(quantized);
    return { format: 'tfjs-layers', uri: stored.uri, bytes: stored.bytes, details: { ...report } };
  } catch (err) {
    if (err instanceof NotLayersModelError) throw invalidInput('modelUri', `${input.modelUri} is not a TensorFlow.js layers model: ${err.message}`);
    if (err instanceof NonFiniteWeightError) throw invalidInput('modelUri', err.message);
    if (err instanceof Float16RangeError) throw invalidInput('variant.dtype', err.message);
    throw err;
  }
}
