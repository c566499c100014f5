import { MockActivityEnvironment } from '@temporalio/testing';
import { listDataset, preprocessBatch, writeManifest } from '../../activities/preprocessing';
import { preprocessDatasetInputSchema, type PreprocessDatasetInput } from '../../lib/schemas/preprocess-dataset';

/**
 * Preprocesses the built-in MNIST digits with the real activities (outside a workflow) into this process's artifact
 * store, for tests about what comes after preprocessing. Returns the manifest URI.
 */
export async function preprocessDigits(maxImages: number, preprocess: PreprocessDatasetInput['preprocess'] = {}): Promise<string> {
  const environment = new MockActivityEnvironment();
  const run = <P extends unknown[], R>(fn: (...args: P) => Promise<R>, ...args: P) => environment.run(fn, ...args) as Promise<R>;
  const { dataset, preprocess: spec, batching } = preprocessDatasetInputSchema.parse({ dataset: { maxImages }, preprocess, batching: { size: 1000 } });
  const listing = await run(listDataset, { dataset, spec, batching });
  for (let batch = 0; batch < listing.batches; batch++) await run(preprocessBatch, { listingUri: listing.listingUri, batch, spec });
  const { manifestUri } = await run(writeManifest, { listingUri: listing.listingUri, spec });
  return manifestUri;
}
