import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LocalArtifactStore } from '../lib/artifacts';
import { encodeNpy } from '../lib/npy';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { trainJob, type TrainJobInput } from '../lib/training/train-job';
import { writeSyntheticDataset } from './helpers/synthetic-dataset';

describe('distillation training extension', () => {
  const store = new LocalArtifactStore(mkdtempSync(join(tmpdir(), 'distillation-extension-')));
  const job = async (logits: { rows: number; classes: number }): Promise<TrainJobInput> => {
    const data = new Float32Array(logits.rows * logits.classes);
    const { uri } = await store.putBlob(encodeNpy({ dtype: 'float32', shape: [logits.rows, logits.classes], data }), '.npy');
    return {
      artifacts: { kind: 'local', root: store.root },
      // 64 training images, 4 classes.
      manifestUri: await writeSyntheticDataset(store, 64),
      model: modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [8], dropout: 0 }),
      training: trainingSpecSchema.parse({ epochs: 1, batchSize: 16, earlyStopping: null }),
      extension: { kind: 'distill', teacherLogitsUri: uri, temperature: 2, alpha: 0.5 },
    };
  };

  it('trains on labels and teacher logits, scores the validation split on its labels, and reports its settings', async () => {
    const result = await trainJob(await job({ rows: 64, classes: 4 }), () => undefined);
    const [epoch] = result.history;
    assert.ok(Number.isFinite(epoch!.loss) && Number.isFinite(epoch!.validationLoss!), JSON.stringify(epoch));
    assert.ok(epoch!.accuracy >= 0 && epoch!.accuracy <= 1);
    assert.equal(result.extension?.temperature, 2);
    assert.equal(result.extension?.alpha, 0.5);
  });

  it('refuses teacher logits that do not match the training split', async () => {
    await assert.rejects(trainJob(await job({ rows: 63, classes: 4 }), () => undefined), {
      name: 'TeacherLogitsMismatchError',
      message: /holds float32 \[63,4\]; the training split needs float32 \[64,4\]/,
    });
  });
});
