import { MockActivityEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { evaluateVariant, type EvaluateVariantInput, type VariantEvaluation } from '../activities/compression-evaluation';
import { artifactStore } from '../lib/artifacts';
import type { CompressedModel } from '../lib/compression/compressed-model';
import type { EvaluationProgress, EvaluationReport } from '../lib/evaluation/evaluate-job';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { tensorflow } from '../lib/tf';
import { trainJob } from '../lib/training/train-job';
import { storeOnnxOf } from './helpers/onnx-export';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';
import { temporaryDataDir } from './helpers/temporal';
import { localArtifactStore } from './helpers/local-store';

/** evaluateVariant in the SDK's activity context, which records every heartbeat; the evaluation runs in a real child process. */
describe('evaluateVariant: one table row per variant, from the same evaluation in the runtime that serves it', () => {
  let manifestUri: string;
  let baseline: EvaluateVariantInput['model'];
  let onnx: CompressedModel;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    const store = localArtifactStore();
    manifestUri = await writeSyntheticDataset(store, 128, { testCount: 300 });
    const model = modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [16], dropout: 0 });
    const training = trainingSpecSchema.parse({ epochs: 2, batchSize: 32, learningRate: 0.01, earlyStopping: null });
    const { modelUri } = await trainJob({ artifacts: { kind: 'local', root: store.root }, manifestUri, model, training }, () => undefined);
    baseline = { format: 'tfjs-layers', uri: modelUri };
    const exported = await storeOnnxOf(store, baseline, manifestUri);
    onnx = { format: 'onnx', uri: exported.uri, bytes: (await store.read(exported.uri)).byteLength, details: {} };
  });

  async function run(variant: string, model: EvaluateVariantInput['model']): Promise<{ row: VariantEvaluation; heartbeats: EvaluationProgress[] }> {
    const environment = new MockActivityEnvironment();
    const heartbeats: EvaluationProgress[] = [];
    environment.on('heartbeat', (details: EvaluationProgress) => heartbeats.push(details));
    const row = (await environment.run(evaluateVariant, { modelName: 'compression-evaluation', variant, model, manifestUri })) as VariantEvaluation;
    return { row, heartbeats };
  }

  it('evaluates the baseline in tfjs and an ONNX variant in onnxruntime-node, heartbeating, with the same accuracy for the same weights', async () => {
    const base = await run('baseline', baseline);
    const exported = await run('onnx', onnx);
    assert.equal(base.row.runtime, tensorflow().backend === 'tensorflow' ? 'tfjs-node' : 'tfjs-cpu');
    assert.equal(exported.row.runtime, 'onnxruntime-node');
    assert.deepEqual([base.row.variant, base.row.format, exported.row.variant, exported.row.format], ['baseline', 'tfjs-layers', 'onnx', 'onnx']);
    assert.equal(exported.row.accuracy, base.row.accuracy);
    assert.equal(exported.row.parameters, base.row.parameters);
    assert.equal(exported.row.bytes, onnx.bytes);
    for (const { row, heartbeats } of [base, exported]) {
      assert.equal(row.count, 300);
      assert.ok(row.nonZeroParameters > 0 && row.nonZeroParameters <= row.parameters);
      assert.ok(row.gzipBytes > 0 && row.gzipBytes < row.bytes);
      assert.equal(row.latencyMs.batchSize, 256);
      assert.deepEqual([heartbeats[0]?.stage, heartbeats.at(-1)?.stage], ['model-loaded', 'latency-measured'], `${row.variant} heartbeats its progress`);
      const report = await artifactStore().readJson<EvaluationReport>(row.reportUri);
      assert.deepEqual(
        [report.accuracy, report.parameterCount, report.nonZeroParameters, report.modelBytes, report.gzipBytes, report.runtime, report.format],
        [row.accuracy, row.parameters, row.nonZeroParameters, row.bytes, row.gzipBytes, row.runtime, row.format],
      );
      assert.equal(report.confusion.flat().reduce((a, b) => a + b, 0), 300);
    }
  });
});
