import type { ArtifactStore } from '../../lib/artifacts';
import { calibrate } from '../../lib/compression/onnx/calibrate';
import { floatGraph } from '../../lib/compression/onnx/float-graph';
import { int8Graph } from '../../lib/compression/onnx/int8-graph';
import { readLayersModel } from '../../lib/compression/onnx/layers-model';
import { encodeModel } from '../../lib/compression/onnx/onnx-proto';
import type { DatasetManifest } from '../../lib/datasets/manifest';
import { loadSplitArrays } from '../../lib/datasets/shards';
import type { StoredModel } from '../../lib/evaluation/stored-model';
import { tensorflow } from '../../lib/tf';

/**
 * A stored TensorFlow.js model exported to ONNX and stored: float32, or with int8 weights and uint8 activations (QDQ)
 * calibrated by min-max on up to 256 training images of the dataset.
 */
export async function storeOnnxOf(store: ArtifactStore, tfjs: StoredModel, manifestUri: string, options: { int8?: boolean } = {}): Promise<StoredModel> {
  const model = readLayersModel(tensorflow().tf, await store.readDirectory(tfjs.uri));
  let graph = floatGraph(model).model;
  if (options.int8) {
    const train = await loadSplitArrays(store, await store.readJson<DatasetManifest>(manifestUri), 'train');
    const ranges = await calibrate(model, train.images, Math.min(256, train.count), { method: 'minmax', percentile: 100 }, () => undefined);
    graph = int8Graph(model, ranges, { activations: 'uint8', format: 'qdq' }).model;
  }
  return { format: 'onnx', uri: (await store.putBlob(encodeModel(graph), '.onnx')).uri };
}
