import { createHash } from 'node:crypto';
import { readJsonIfStored, type ArtifactStore } from '../artifacts';
import { prefetched } from '../prefetch';
import type { PreprocessSpec } from '../schemas/preprocess';
import { canonicalJson } from '../canonical-json';
import { readBatchOutputForManifest, type BatchOutputForManifest } from './batch-output';

/**
 * Where a batch of a listing, preprocessed under a spec, records the URI of its output: the manifest is assembled
 * from the listing and the spec alone, so no list of batch outputs passes through the workflow.
 */
function recordKey(listingUri: string, spec: PreprocessSpec, batch: number): string {
  const run = createHash('sha256').update(`${listingUri}\n${canonicalJson(spec)}`).digest('hex');
  return `preprocess/batch-outputs/${run.slice(0, 2)}/${run}/${String(batch).padStart(6, '0')}.json`;
}

/** Records a batch's output; a record that already says the same is left alone, so a re-run writes nothing. */
export async function recordBatchOutput(store: ArtifactStore, listingUri: string, spec: PreprocessSpec, batch: number, outputUri: string): Promise<void> {
  const key = recordKey(listingUri, spec, batch);
  if ((await readJsonIfStored<string>(store, key)) === outputUri) return;
  await store.putNamed(key, JSON.stringify(outputUri));
}

/** Outputs read ahead of the one being assembled: reading and parsing overlap, as they do on an object store's latency. */
const READ_AHEAD = 4;

/** The outputs of a listing's batches under a spec, in batch order. */
export function recordedBatchOutputs(store: ArtifactStore, listingUri: string, spec: PreprocessSpec, batches: number): AsyncGenerator<BatchOutputForManifest> {
  const read = async (batch: number) => readBatchOutputForManifest(store, await store.readJson<string>(recordKey(listingUri, spec, batch)));
  return prefetched(Array.from({ length: batches }, (_, batch) => batch), read, READ_AHEAD);
}
