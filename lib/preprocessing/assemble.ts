import { createHash } from 'node:crypto';
import type { ArtifactStore } from '../artifacts';
import { sortByLeadingDigest } from '../digest-sort';
import type { ListingIndex } from '../datasets/listing';
import type { DatasetManifest, ShardRef } from '../datasets/manifest';
import { decodeNpy, encodeNpy, pickRows } from '../npy';
import type { PreprocessSpec } from '../schemas/preprocess';
import { SPLITS, type Split } from '../split';
import type { BatchOutput, BatchShard } from './batch';
import type { Decoder } from './decoders';
import type { LeftOutFile } from './quarantine';

/**
 * Combines batch outputs into the dataset manifest. An image whose exact content already appeared in an earlier
 * batch is dropped here (batches drop their own duplicates), so every distinct image is in the dataset once; the few
 * shards holding such images are rewritten without them. `onBatch` is called as each batch output is taken in.
 */
export async function assembleManifest(
  store: ArtifactStore,
  listing: ListingIndex,
  spec: PreprocessSpec,
  batchOutputs: AsyncIterable<BatchOutput>,
  onBatch: () => void = () => {},
): Promise<DatasetManifest> {
  const firstPathOf = new Map<string, string>();
  const shards: ShardRef[] = [];
  const leftOut: LeftOutFile[] = [];
  const kept: string[] = [];
  const index: [path: string, sha256: string, split: Split, label: number, decoder: Decoder][] = [];
  const decoders: Record<Decoder, number> = { tensorflow: 0, png: 0, sharp: 0 };
  const counts = { train: 0, validation: 0, test: 0 };
  const countsPerClass = Object.fromEntries(SPLITS.map((s) => [s, new Array<number>(listing.classes.length).fill(0)])) as Record<Split, number[]>;
  let augmentedCopies = 0;

  for await (const output of batchOutputs) {
    leftOut.push(...output.leftOut);
    const dropped = new Set<number>();
    output.images.forEach((image, i) => {
      const first = firstPathOf.get(image.sha256);
      if (first !== undefined) {
        dropped.add(i);
        leftOut.push({ path: image.path, reason: 'duplicate', detail: `same content as ${first}` });
      } else {
        firstPathOf.set(image.sha256, image.path);
        kept.push(`${image.sha256} ${listing.classes[image.label]}`);
        index.push([image.path, image.sha256, image.split, image.label, image.decoder]);
        decoders[image.decoder]++;
      }
    });
    for (const shard of output.shards) {
      const rows = shard.rows.filter((image) => !dropped.has(image));
      if (rows.length === 0) continue;
      const written = rows.length === shard.rows.length ? shard : await withoutRows(store, shard, dropped);
      shards.push({ split: written.split, imagesUri: written.imagesUri, labelsUri: written.labelsUri, count: written.count });
      counts[shard.split] += rows.length;
      const seen = new Set<number>();
      for (const image of rows) {
        countsPerClass[shard.split][output.images[image]!.label]!++;
        if (seen.has(image)) augmentedCopies++;
        seen.add(image);
      }
    }
    onBatch();
  }

  const leftOutByReason: DatasetManifest['leftOutByReason'] = {};
  for (const file of leftOut) leftOutByReason[file.reason] = (leftOutByReason[file.reason] ?? 0) + 1;
  return {
    version: 2,
    source: listing.source,
    classes: listing.classes,
    shape: [spec.height, spec.width, spec.channels],
    dtype: spec.storage,
    spec,
    counts,
    countsPerClass,
    images: { listed: listing.count, kept: kept.length, leftOut: leftOut.length, augmentedCopies },
    decoders,
    shards,
    imagesIndexUri: (await store.putBlob(Buffer.from(JSON.stringify(index)), '.json')).uri,
    leftOut,
    leftOutByReason,
    fingerprint: createHash('sha256').update(sortByLeadingDigest(kept).join('\n')).digest('hex'),
  };
}

/** A copy of a shard without the rows of the dropped images, stored as new content-addressed arrays. */
async function withoutRows(store: ArtifactStore, shard: BatchShard, dropped: Set<number>): Promise<ShardRef> {
  const keep = shard.rows.flatMap((image, row) => (dropped.has(image) ? [] : [row]));
  const images = decodeNpy(await store.read(shard.imagesUri));
  const labels = decodeNpy(await store.read(shard.labelsUri));
  const [imagesArtifact, labelsArtifact] = await Promise.all([
    store.putBlob(encodeNpy(pickRows(images, keep)), '.npy'),
    store.putBlob(encodeNpy({ dtype: 'int32', shape: [keep.length], data: Int32Array.from(keep, (row) => labels.data[row]!) }), '.npy'),
  ]);
  return { split: shard.split, imagesUri: imagesArtifact.uri, labelsUri: labelsArtifact.uri, count: keep.length };
}
