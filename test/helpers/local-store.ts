import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalArtifactStore, artifactStore } from '../../lib/artifacts';

/** This process's artifact store, which tests that look at its files expect to be the local one. */
export function localArtifactStore(): LocalArtifactStore {
  const store = artifactStore();
  if (!(store instanceof LocalArtifactStore)) throw new Error('This test reads the local artifact store; unset TEMPORAL_ML_ARTIFACT_URL.');
  return store;
}

/** The `file://` URL of a stored model's model.json, for stock `tf.loadLayersModel`. */
export function modelJsonUrl(uri: string, store: LocalArtifactStore = localArtifactStore()): string {
  return pathToFileURL(join(store.pathOf(uri), 'model.json')).href;
}
