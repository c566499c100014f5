import { openArtifactStore, type ArtifactStoreDescription } from '../artifacts';
import { serveChildTask } from '../child-task';
import { readManifest } from '../datasets/manifest';
import { loadSplit } from '../datasets/shards';
import { modelFromFiles } from '../model-io';
import { encodeNpy } from '../npy';
import { tensorflow } from '../tf';
import { logitsOf } from './distillation';
import { recordTeacherLogits, type StoredTeacherLogits } from './teacher-logits';

export interface TeacherLogitsJobInput {
  /** The store to read and write, as the parent process described it. */
  artifacts: ArtifactStoreDescription;
  modelUri: string;
  manifestUri: string;
  /** Least time between progress reports (default 500 ms). */
  progressIntervalMs?: number;
}

export interface TeacherLogitsProgress {
  imagesDone: number;
  images: number;
}

/** The teacher does not fit the dataset (its outputs are not one per class): computing again cannot help. */
export class TeacherMismatchError extends Error {
  override name = 'TeacherMismatchError';
}

const BATCH_SIZE = 256;
const PROGRESS_INTERVAL_MS = 500;

/**
 * Computes a teacher's logits (log-probabilities, see `logitsOf`) for every image of the training split, in the
 * split's order, stores them as a float32 `.npy` [trainCount, classes] and records them for (model, manifest).
 */
export async function teacherLogitsJob(input: TeacherLogitsJobInput, reportProgress: (p: TeacherLogitsProgress) => void): Promise<StoredTeacherLogits> {
  const { tf } = tensorflow();
  const store = openArtifactStore(input.artifacts);
  const manifest = await readManifest(store, input.manifestUri);
  const model = await modelFromFiles(tf, await store.readDirectory(input.modelUri));
  const train = await loadSplit(tf, store, manifest, 'train');
  try {
    const classes = manifest.classes.length;
    const outputs = model.outputs[0]!.shape;
    if (outputs.length !== 2 || outputs[1] !== classes) {
      throw new TeacherMismatchError(`the teacher's output is [${outputs.map(String)}]; the dataset has ${classes} classes`);
    }
    const logits = new Float32Array(train.count * classes);
    reportProgress({ imagesDone: 0, images: train.count });
    let lastReportAt = performance.now();
    for (let start = 0; start < train.count; start += BATCH_SIZE) {
      const size = Math.min(BATCH_SIZE, train.count - start);
      const batch = tf.tidy(() => logitsOf(tf, model.predict(train.images.slice(start, size), { batchSize: size }) as ReturnType<typeof tf.tensor2d>));
      logits.set(batch.dataSync(), start * classes);
      batch.dispose();
      if (performance.now() - lastReportAt >= (input.progressIntervalMs ?? PROGRESS_INTERVAL_MS)) {
        reportProgress({ imagesDone: start + size, images: train.count });
        lastReportAt = performance.now();
      }
    }
    const stored = await store.putBlob(encodeNpy({ dtype: 'float32', shape: [train.count, classes], data: logits }), '.npy');
    const result = { uri: stored.uri, bytes: stored.bytes };
    await recordTeacherLogits(store, input.modelUri, input.manifestUri, result);
    return result;
  } finally {
    tf.dispose([train.images, train.labels]);
    model.dispose();
  }
}

if (require.main === module) serveChildTask(teacherLogitsJob);
