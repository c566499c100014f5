import type { Tensor } from '@tensorflow/tfjs';
import type { LocalArtifactStore } from '../artifacts';
import { decodeNpy } from '../npy';
import type { Split } from '../split';
import type { TensorFlow } from '../tf';
import type { DatasetManifest } from './manifest';

export interface SplitTensors {
  images: Tensor;
  labels: Tensor;
  count: number;
}

/** Loads every shard of one split into an image tensor and a one-hot label tensor. */
export async function loadSplit(tf: TensorFlow, store: LocalArtifactStore, manifest: DatasetManifest, split: Split): Promise<SplitTensors> {
  const shards = manifest.shards.filter((s) => s.split === split && s.count > 0);
  const count = shards.reduce((n, s) => n + s.count, 0);
  const [height, width, channels] = manifest.shape;
  const pixels = new Float32Array(count * height * width * channels);
  const labels = new Int32Array(count);
  let offset = 0;
  for (const shard of shards) {
    const images = decodeNpy(await store.read(shard.imagesUri));
    const shardLabels = decodeNpy(await store.read(shard.labelsUri));
    if (images.dtype !== 'float32' || shardLabels.dtype !== 'int32') throw new Error(`shard ${shard.imagesUri} has unexpected dtypes`);
    pixels.set(images.data, offset * height * width * channels);
    labels.set(shardLabels.data, offset);
    offset += shard.count;
  }
  return tf.tidy(() => ({
    images: tf.tensor4d(pixels, [count, height, width, channels]),
    labels: tf.oneHot(tf.tensor1d(labels, 'int32'), manifest.classes.length),
    count,
  }));
}
