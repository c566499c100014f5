import { LocalArtifactStore, type ArtifactStore } from '../artifacts';
import { S3ArtifactStore } from '../s3-artifacts';
import type { GcBackend } from './backend';
import { LocalGcBackend } from './local-backend';
import { S3GcBackend } from './s3-backend';

/** Garbage collection's view of the store a worker uses. */
export function gcBackendFor(store: ArtifactStore): GcBackend {
  if (store instanceof LocalArtifactStore) return new LocalGcBackend(store);
  if (store instanceof S3ArtifactStore) return new S3GcBackend(store);
  throw new Error(`gc does not know the artifact store ${store.constructor.name}`);
}
