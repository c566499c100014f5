import { createHash } from 'node:crypto';
import type { ArtifactStore } from '../artifacts';
import type { DatasetManifest } from './manifest';

/** `[path, sha256 of the content, split, label, decoder]`, one entry per distinct image kept, as preprocessing indexes them. */
type IndexEntry = [string, string, string, number, string?];

/**
 * Identifies the test split a model's accuracy is measured on: sha256 over the class names and the content hash and
 * label of every test image, sorted, so batching and listing order do not change it. A dataset written without an
 * image index is identified by its (content-addressed) test shards instead.
 */
export async function testSplitFingerprintOf(store: ArtifactStore, manifest: DatasetManifest): Promise<string> {
  const index = await store.readJson<IndexEntry[]>(manifest.imagesIndexUri);
  const images = index.filter(([, , split]) => split === 'test').map(([, sha256, , label]) => `${sha256}:${label}`);
  const items = images.length
    ? images
    : manifest.shards.filter((shard) => shard.split === 'test').map((shard) => `${shard.imagesUri}:${shard.labelsUri}`);
  return createHash('sha256').update(JSON.stringify({ classes: manifest.classes, test: items.sort() })).digest('hex');
}
