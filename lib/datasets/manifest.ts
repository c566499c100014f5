import type { PreprocessSpec } from '../schemas/preprocess';
import type { Split } from '../split';

export interface ShardRef {
  split: Split;
  /** `.npy` of float32 pixels, [count, height, width, channels]. */
  imagesUri: string;
  /** `.npy` of int32 class indices, [count]. */
  labelsUri: string;
  count: number;
}

export interface QuarantinedFile {
  path: string;
  reason: string;
}

/** What a preprocessing run produced; stored as JSON beside the shards and passed around by URI. */
export interface DatasetManifest {
  version: 1;
  source: string;
  classes: string[];
  shape: [height: number, width: number, channels: number];
  dtype: 'float32';
  spec: PreprocessSpec;
  counts: Record<Split, number>;
  countsPerClass: Record<Split, number[]>;
  shards: ShardRef[];
  quarantined: QuarantinedFile[];
  /** sha256 over the content hashes of every image kept, in order. */
  fingerprint: string;
}
