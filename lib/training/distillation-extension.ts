import type { LayersModel } from '@tensorflow/tfjs';
import { distillationLoss, labelAccuracy } from '../compression/distillation';
import { decodeNpy } from '../npy';
import type { ExtensionContext, TrainingExtension } from './extension';

/** Trains on the labels and a teacher's logits for the training split, stored by the `teacherLogits` activity. */
export interface DistillationExtensionSpec {
  kind: 'distill';
  teacherLogitsUri: string;
  temperature: number;
  alpha: number;
}

/** The teacher's logits do not match the training split (another dataset's, say): training again cannot help. */
export class TeacherLogitsMismatchError extends Error {
  override name = 'TeacherLogitsMismatchError';
}

export async function distillationExtension({ tf, store, manifest, train }: ExtensionContext, spec: DistillationExtensionSpec): Promise<TrainingExtension> {
  const classes = manifest.classes.length;
  const stored = decodeNpy(await store.read(spec.teacherLogitsUri));
  if (stored.dtype !== 'float32' || stored.shape.join() !== [train.count, classes].join()) {
    throw new TeacherLogitsMismatchError(`${spec.teacherLogitsUri} holds ${stored.dtype} [${stored.shape}]; the training split needs float32 [${train.count},${classes}]`);
  }
  const teacherLogits = tf.tensor2d(stored.data as Float32Array, [train.count, classes]);
  const settings = { temperature: spec.temperature, alpha: spec.alpha, classes };
  return {
    compileArgs: () => ({ loss: distillationLoss(tf, settings), metrics: [labelAccuracy(tf, classes)] }),
    start: (model) => acceptTargetsOfAnyWidth(model),
    batchTargets: (indices, labels) => tf.concat([tf.gather(labels, indices).toFloat(), tf.gather(teacherLogits, indices)], 1),
    finish: () => {
      teacherLogits.dispose();
      return { temperature: spec.temperature, alpha: spec.alpha, teacherLogitsUri: spec.teacherLogitsUri };
    },
  };
}

/**
 * tfjs checks that targets are as wide as the model's output. Training targets here are twice as wide (labels and
 * teacher logits side by side) and validation targets are not; the loss checks the width itself.
 */
function acceptTargetsOfAnyWidth(model: LayersModel): void {
  // A Sequential model compiles and trains the functional model it wraps.
  const compiled = ((model as unknown as { model?: LayersModel }).model ?? model) as unknown as { feedOutputShapes: (number | null)[][] };
  compiled.feedOutputShapes = compiled.feedOutputShapes.map((shape) => [...shape.slice(0, -1), null]);
}
