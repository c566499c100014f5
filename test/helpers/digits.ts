import { MockActivityEnvironment } from '@temporalio/testing';
import { listDataset, preprocessBatch, writeManifest } from '../../activities/datasets';
import { preprocessSpecSchema } from '../../lib/schemas/preprocess';

/**
 * Preprocesses the built-in MNIST digits with the real activities (outside a workflow) into this process's artifact
 * store, for tests about what comes after preprocessing. Returns the manifest URI.
 */
export async function preprocessDigits(maxImages: number): Promise<string> {
  const environment = new MockActivityEnvironment();
  const activity = { run: <P extends unknown[], R>(fn: (...args: P) => Promise<R>, ...args: P) => environment.run(fn, ...args) as Promise<R> };
  const spec = preprocessSpecSchema.parse({ shardSize: 1000 });
  const listing = await activity.run(listDataset, { source: 'builtin:mnist-digits', maxImages });
  const batches = [];
  for (let offset = 0; offset < listing.count; offset += spec.shardSize) {
    batches.push(await activity.run(preprocessBatch, { listingUri: listing.listingUri, offset, count: Math.min(spec.shardSize, listing.count - offset), spec }));
  }
  const { manifestUri } = await activity.run(writeManifest, { source: listing.source, classes: listing.classes, spec, batches });
  return manifestUri;
}
