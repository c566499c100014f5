import { artifactStore } from '../lib/artifacts';
import { Context } from '@temporalio/activity';
import { ChildTaskError, runChildTask, silenceTimeoutFor } from '../lib/child-task';
import type { CompressedModel } from '../lib/compression/compressed-model';
import type { ExportJobInput, ExportProgress } from '../lib/compression/onnx/export-job';
import type { Int8Variant, OnnxVariant } from '../lib/schemas/compression';
import { invalidInput } from '../lib/validate';

export interface ExportOnnxInput {
  modelName: string;
  modelUri: string;
  manifestUri: string;
  variant: OnnxVariant | Int8Variant;
}

const exportJobModule = require.resolve('../lib/compression/onnx/export-job');

/**
 * Exports a stored TensorFlow.js layers model to a content-addressed `.onnx` file: float32 (`onnx`) or with int8
 * weights and activations calibrated on training images (`int8`). The work runs in a child process whose progress
 * the activity heartbeats; cancellation kills it. A model the exporter cannot translate is a non-retryable failure
 * naming `modelUri` and the layer.
 */
export async function exportOnnx(input: ExportOnnxInput): Promise<CompressedModel> {
  const context = Context.current();
  try {
    return await runChildTask<ExportJobInput, ExportProgress, CompressedModel>(
      exportJobModule,
      { artifacts: await artifactStore().describeForChild(), modelUri: input.modelUri, manifestUri: input.manifestUri, variant: input.variant },
      {
        signal: context.cancellationSignal,
        onProgress: (progress) => context.heartbeat(progress),
        silenceTimeoutMs: silenceTimeoutFor(context.info.heartbeatTimeoutMs),
      },
    );
  } catch (err) {
    if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
    if (!(err instanceof ChildTaskError)) throw err;
    if (err.name === 'UnsupportedLayerError' || err.name === 'ArtifactPathError') throw invalidInput('modelUri', `${input.modelUri}: ${err.message}`);
    if (err.name === 'InvalidDatasetError') throw invalidInput('manifestUri', err.message);
    throw err;
  }
}
