import { readFileSync } from 'node:fs';
import { serveChildTask } from '../../lib/child-task';
import { tensorflow } from '../../lib/tf';

/** A child task that runs TensorFlow ops, then answers how many threads its process has. */
serveChildTask(async () => {
  const { tf } = tensorflow();
  const a = tf.randomNormal([256, 256]);
  for (let i = 0; i < 5; i++) tf.matMul(a, a).dataSync();
  return Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
});
