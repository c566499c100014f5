import type { Tensor } from '@tensorflow/tfjs';
import type { ArtifactStore } from '../artifacts';
import { decodeNpy, type NpyArray } from '../npy';
import type { Split } from '../split';
import type { TensorFlow } from '../tf';
import { normalizeInto } from '../preprocessing/normalize';
import { InvalidDatasetError, type DatasetManifest, type ShardRef } from './manifest';

export interface SplitTensors {
  images: Tensor;
  labels: Tensor;
  count: number;
}

/**
 * Reads one `.npy` shard file. A file that is gone or is not the array the manifest promises is an InvalidDatasetError
 * naming it; any other read failure (EACCES, EIO) is thrown as it is, for a retry.
 */
export async function readShard(store: ArtifactStore, uri: string, dtype: NpyArray['dtype'], shape: number[]): Promise<NpyArray> {
  let bytes: Buffer;
  try {
    bytes = await store.read(uri);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidDatasetError(`the dataset shard ${uri} is missing`);
    throw err;
  }
  let array: NpyArray;
  try {
    array = decodeNpy(bytes);
  } catch (err) {
    throw new InvalidDatasetError(`the dataset shard ${uri} is not a valid .npy file: ${(err as Error).message}`);
  }
  if (array.dtype !== dtype || array.shape.join() !== shape.join()) {
    throw new InvalidDatasetError(`the dataset shard ${uri} holds ${array.dtype} [${array.shape}], the manifest says ${dtype} [${shape}]`);
  }
  return array;
}

export interface SplitArrays {
  /** NHWC pixels of every image, in shard order. */
  images: Float32Array;
  /** Class index of every image. */
  labels: Int32Array;
  count: number;
}

/** Reads the pixels of one shard as stored (uint8 or float32), checked against the manifest. */
export function readShardPixels(store: ArtifactStore, manifest: DatasetManifest, shard: ShardRef): Promise<NpyArray> {
  return readShard(store, shard.imagesUri, manifest.dtype, [shard.count, ...manifest.shape]);
}

/** Reads every shard of one split into one normalized pixel array and one label array. */
export async function loadSplitArrays(store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<SplitArrays> {
  const shards = manifest.shards.filter((s) => s.split === split && s.count > 0);
  const count = shards.reduce((n, s) => n + s.count, 0);
  const rowSize = manifest.shape.reduce((a, b) => a * b, 1);
  const images = new Float32Array(count * rowSize);
  const labels = new Int32Array(count);
  let offset = 0;
  for (const shard of shards) {
    const shardImages = await readShardPixels(store, manifest, shard);
    const shardLabels = await readShard(store, shard.labelsUri, 'int32', [shard.count]);
    if (shardImages.dtype === 'uint8') normalizeInto(shardImages.data, manifest.spec, images, offset * rowSize);
    else images.set(shardImages.data, offset * rowSize);
    labels.set(shardLabels.data, offset);
    offset += shard.count;
  }
  return { images, labels, count };
}

/** Names a split's content exactly (its shards' URIs are content addresses): a key to cache what is loaded from it. */
export function splitContentKey(manifest: DatasetManifest, split: Split): string {
  return manifest.shards
    .filter((shard) => shard.split === split)
    .map((shard) => `${shard.imagesUri}+${shard.labelsUri}`)
    .join(',');
}

/** Loads every shard of one split into an image tensor and a one-hot label tensor. */
export async function loadSplit(tf: TensorFlow, store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<SplitTensors> {
  const { images, labels, count } = await loadSplitArrays(store, manifest, split);
  return tf.tidy(() => ({
    images: tf.tensor4d(images, [count, ...manifest.shape]),
    labels: tf.oneHot(tf.tensor1d(labels, 'int32'), manifest.classes.length),
    count,
  }));
}
