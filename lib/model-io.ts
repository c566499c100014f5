import type { LayersModel, io } from '@tensorflow/tfjs';
import type { ArtifactStore, StoredArtifact } from './artifacts';
import type { TensorFlow } from './tf';

/** The one weights file a stored model has. */
export const WEIGHTS_FILE = 'weights.bin';

/**
 * Stores a model in the stock TensorFlow.js layers format (model.json + one weights file), as a content-addressed
 * directory artifact that `tf.loadLayersModel('file://…/model.json')` loads as it is.
 */
export async function saveModel(tf: TensorFlow, store: ArtifactStore, model: LayersModel): Promise<StoredArtifact> {
  return store.putDirectory(await modelFiles(tf, model));
}

/** The files of the TensorFlow.js layers format for `model`: `model.json` and its weights. */
export async function modelFiles(tf: TensorFlow, model: LayersModel): Promise<Record<string, Uint8Array>> {
  let files: Record<string, Uint8Array> | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts: io.ModelArtifacts) => {
      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)));
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: null,
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
      };
      files = { 'model.json': Buffer.from(JSON.stringify(modelJson)), [WEIGHTS_FILE]: weights };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
  if (!files) throw new Error('the model produced no artifacts to save');
  return files;
}

/** Loads a model from the files `modelFiles` gave, on any backend (the JS backend has no file:// loader). */
export async function modelFromFiles(tf: TensorFlow, files: Record<string, Uint8Array>): Promise<LayersModel> {
  const modelJson = JSON.parse(Buffer.from(files['model.json']!).toString('utf8')) as io.ModelJSON;
  const weightSpecs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const weightData = Buffer.concat(modelJson.weightsManifest.flatMap((group) => group.paths.map((p) => files[p]!)));
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs,
      weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
    }),
  );
}

