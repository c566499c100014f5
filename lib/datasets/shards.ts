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
  checkShard(uri, array, dtype, shape);
  return array;
}

/** Throws an InvalidDatasetError naming the shard unless it holds what the manifest promises. */
export function checkShard(uri: string, found: Pick<NpyArray, 'dtype' | 'shape'>, dtype: NpyArray['dtype'], shape: number[]): void {
  if (found.dtype !== dtype || found.shape.join() !== shape.join()) {
    throw new InvalidDatasetError(`the dataset shard ${uri} holds ${found.dtype} [${found.shape}], the manifest says ${dtype} [${shape}]`);
  }
}

/** The shards of one split that hold images, in manifest order: the order of a split's (global) row indices. */
export const splitShards = (manifest: DatasetManifest, split: Split): ShardRef[] => manifest.shards.filter((s) => s.split === split && s.count > 0);

/** Bytes one image takes in a shard file, as stored (`manifest.dtype`). */
export const shardRowBytes = (manifest: DatasetManifest): number => manifest.shape.reduce((a, b) => a * b, 1) * (manifest.dtype === 'uint8' ? 1 : 4);

/** Class index of every image of one split, in shard order. */
export async function loadSplitLabels(store: ArtifactStore, manifest: DatasetManifest, split: Split): Promise<Int32Array> {
  const shards = splitShards(manifest, split);
  const labels = new Int32Array(shards.reduce((n, s) => n + s.count, 0));
  let offset = 0;
  for (const shard of shards) {
    labels.set((await readShard(store, shard.labelsUri, 'int32', [shard.count])).data, offset);
    offset += shard.count;
  }
  return labels;
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
  const labels = await loadSplitLabels(store, manifest, split);
  const count = labels.length;
  const rowSize = manifest.shape.reduce((a, b) => a * b, 1);
  const images = new Float32Array(count * rowSize);
  let offset = 0;
  for (const shard of splitShards(manifest, split)) {
    const shardImages = await readShardPixels(store, manifest, shard);
    if (shardImages.dtype === 'uint8') normalizeInto(shardImages.data, manifest.spec, images, offset * rowSize);
    else images.set(shardImages.data, offset * rowSize);
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
