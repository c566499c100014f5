import type { Tensor } from '@tensorflow/tfjs';
import type { TensorFlow } from '../tf';

/** Floor on a probability before its logarithm, as tfjs' own categorical cross-entropy clips. */
const EPSILON = 1e-7;

export interface DistillationSettings {
  temperature: number;
  /** Weight of the soft (teacher) term; the hard-label term gets 1 - alpha. */
  alpha: number;
  classes: number;
}

/**
 * Logits of a model that ends in softmax: its log-probabilities. They differ from the pre-softmax logits by a constant
 * per row (log softmax(z) = z - logsumexp(z)), which softmax(./T) ignores, so they soften exactly as the logits would.
 */
export function logitsOf(tf: TensorFlow, probabilities: Tensor): Tensor {
  return tf.log(tf.clipByValue(probabilities, EPSILON, 1));
}

/**
 * The loss of Hinton et al. 2015, per sample:
 *   alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(labels, softmax(student)),
 * the student's logits taken from its softmax output by `logitsOf`. Targets are the one-hot labels and the teacher's
 * logits side by side, [batch, 2 * classes]; plain one-hot labels, [batch, classes] (the validation split), are scored
 * with the cross-entropy alone.
 */
export function distillationLoss(tf: TensorFlow, { temperature, alpha, classes }: DistillationSettings) {
  return function distillation(targets: Tensor, probabilities: Tensor): Tensor {
    const width = targets.shape[1];
    if (width !== classes && width !== 2 * classes) throw new Error(`distillation targets are ${classes} or ${2 * classes} wide, not ${width}`);
    const studentLogits = logitsOf(tf, probabilities);
    // One-hot labels come as int32.
    const labels = tf.cast(tf.slice(targets, [0, 0], [-1, classes]), 'float32');
    const crossEntropy = tf.neg(tf.sum(tf.mul(labels, studentLogits), -1));
    if (width === classes) return crossEntropy;
    const teacher = tf.logSoftmax(tf.div(tf.slice(targets, [0, classes], [-1, classes]), temperature));
    const student = tf.logSoftmax(tf.div(studentLogits, temperature));
    const divergence = tf.sum(tf.mul(tf.exp(teacher), tf.sub(teacher, student)), -1);
    return tf.add(tf.mul(divergence, alpha * temperature ** 2), tf.mul(crossEntropy, 1 - alpha));
  };
}

/** Accuracy against the one-hot labels in the first `classes` columns of the targets, whatever follows them. */
export function labelAccuracy(tf: TensorFlow, classes: number) {
  return function accuracy(targets: Tensor, probabilities: Tensor): Tensor {
    return tf.cast(tf.equal(tf.argMax(tf.slice(targets, [0, 0], [-1, classes]), -1), tf.argMax(probabilities, -1)), 'float32');
  };
}
