import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchImages, LISTING_CHUNK, listingFiles, type ListedImage, type ListingIndex } from '../lib/datasets/listing';

describe('listing files', () => {
  it('give every batch exactly its slice, whether it falls inside one file or spans several', async () => {
    const images: ListedImage[] = Array.from({ length: 2 * LISTING_CHUNK + 500 }, (_, i) => ({ path: `x/${i}.png`, label: i % 3 }));
    for (const batchSize of [1, 700, LISTING_CHUNK, 2 * LISTING_CHUNK + 1]) {
      const batches = Math.ceil(images.length / batchSize);
      const index: ListingIndex = { source: { format: 'folder', path: 'x' }, classes: ['a', 'b', 'c'], count: images.length, batchSize, batches, idxFiles: [] };
      const files = listingFiles(index, images);
      assert.equal(Object.keys(files).length, 1 + Math.ceil(images.length / LISTING_CHUNK), 'files do not depend on the batch size');
      const read = async (name: string) => JSON.parse(Buffer.from(files[name]!).toString()) as ListedImage[];
      for (const batch of [0, 1, batches - 1]) {
        assert.deepEqual(await batchImages(index, batch, read), images.slice(batch * batchSize, (batch + 1) * batchSize), `batch ${batch} of ${batchSize}`);
      }
    }
  });
});
