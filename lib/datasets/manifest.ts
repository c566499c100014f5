import type { LeftOutFile, QuarantineReason } from '../preprocessing/quarantine';
import type { DatasetSourceDescriptor, PreprocessSpec } from '../schemas/preprocess';
import type { Split } from '../split';

export interface ShardRef {
  split: Split;
  /** `.npy` of float32 pixels, [count, height, width, channels]. */
  imagesUri: string;
  /** `.npy` of int32 class indices, [count]. */
  labelsUri: string;
  count: number;
}

/** What a preprocessing run produced; stored as JSON beside the shards and passed around by URI. */
export interface DatasetManifest {
  version: 2;
  source: DatasetSourceDescriptor | string;
  classes: string[];
  shape: [height: number, width: number, channels: number];
  dtype: 'float32';
  spec: PreprocessSpec;
  /** Rows per split, augmented copies included. */
  counts: Record<Split, number>;
  countsPerClass: Record<Split, number[]>;
  images: {
    /** Files (or IDX records) listed from the source. */
    listed: number;
    /** Distinct images written (each once, whatever its augmented copies). */
    kept: number;
    leftOut: number;
    augmentedCopies: number;
  };
  shards: ShardRef[];
  /** JSON array of every distinct image kept, in listing order: [path, sha256 of its content, split, label]. */
  imagesIndexUri: string;
  /** Every listed file that is not in a shard, and why. */
  leftOut: LeftOutFile[];
  leftOutByReason: Partial<Record<QuarantineReason, number>>;
  /** sha256 over the sorted content hashes and class names of the images kept: the same images give the same value. */
  fingerprint: string;
}
