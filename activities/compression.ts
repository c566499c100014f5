import type { io } from '@tensorflow/tfjs';
import { ArtifactPathError, artifactStore, keyOf } from '../lib/artifacts';
import type { CompressionTable } from '../lib/compression/choice';
import { InvalidDatasetError, readManifest } from '../lib/datasets/manifest';
import { compressionAccuracyDelta, compressionRatio } from '../lib/metrics';
import { invalidInput } from '../lib/validate';

export interface CheckCompressionInput {
  modelUri: string;
  manifestUri: string;
}

/** The key a user-given URI names in the store, or a user error naming its field. */
function confined(uri: string, field: string): string {
  try {
    return keyOf(uri);
  } catch (err) {
    if (err instanceof ArtifactPathError) throw invalidInput(field, err.message);
    throw err;
  }
}

/**
 * Checks, before anything is compressed, that `modelUri` holds a TensorFlow.js layers model with all its weight files
 * and `manifestUri` a dataset manifest with a test split; each problem is a user error naming its field.
 */
export async function checkCompressionInput(input: CheckCompressionInput): Promise<void> {
  const store = artifactStore();
  confined(input.modelUri, 'modelUri');
  confined(input.manifestUri, 'manifestUri');
  let modelJson: Partial<io.ModelJSON> & { format?: string };
  try {
    modelJson = await store.readJson(`${input.modelUri}/model.json`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw invalidInput('modelUri', `no TensorFlow.js layers model (model.json) at ${input.modelUri}`);
    if (err instanceof SyntaxError) throw invalidInput('modelUri', `${input.modelUri}/model.json is not valid JSON`);
    throw err;
  }
  if (modelJson.format !== 'layers-model' || !modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
    throw invalidInput('modelUri', `${input.modelUri} is not a TensorFlow.js layers model (its model.json has no layers-model topology and weights)`);
  }
  for (const path of modelJson.weightsManifest.flatMap((group) => group.paths)) {
    if (!(await store.exists(`${input.modelUri}/${path}`))) throw invalidInput('modelUri', `the weights file ${path} of ${input.modelUri} is missing`);
  }
  try {
    const manifest = await readManifest(store, input.manifestUri);
    if (manifest.counts.test === 0) throw invalidInput('manifestUri', `the dataset at ${input.manifestUri} has no test images to measure variants on`);
  } catch (err) {
    if (err instanceof InvalidDatasetError) throw invalidInput('manifestUri', err.message);
    throw err;
  }
}

/** Stores the compression table as a JSON artifact and records each measured variant's ratio and accuracy delta. */
export async function storeCompressionTable(table: CompressionTable): Promise<string> {
  for (const row of table.rows) {
    if (row.status !== 'done') continue;
    const labels = { model: table.modelName, variant: row.variant };
    compressionRatio.set(labels, row.sizeRatio);
    compressionAccuracyDelta.set(labels, row.accuracyDelta);
  }
  return (await artifactStore().putBlob(Buffer.from(JSON.stringify(table, null, 2)), '.json')).uri;
}
