import { createHash } from 'node:crypto';
import { readJsonIfStored, type ArtifactStore } from '../artifacts';

export interface StoredTeacherLogits {
  uri: string;
  bytes: number;
}

/** Where the logits of a teacher model on a dataset's training split are recorded: one record per (model, manifest). */
function recordKey(modelUri: string, manifestUri: string): string {
  const key = createHash('sha256').update(`${modelUri}\n${manifestUri}`).digest('hex');
  return `distillation/teacher-logits/${key.slice(0, 2)}/${key}.json`;
}

/** Records the stored logits of a teacher on a dataset; a record that already says the same is left alone. */
export async function recordTeacherLogits(store: ArtifactStore, modelUri: string, manifestUri: string, logits: StoredTeacherLogits): Promise<void> {
  const key = recordKey(modelUri, manifestUri);
  if ((await readJsonIfStored<StoredTeacherLogits>(store, key))?.uri === logits.uri) return;
  await store.putNamed(key, JSON.stringify(logits));
}

/** The logits recorded for a teacher on a dataset, if they are there and intact. */
export async function recordedTeacherLogits(store: ArtifactStore, modelUri: string, manifestUri: string): Promise<StoredTeacherLogits | undefined> {
  const key = recordKey(modelUri, manifestUri);
  const logits = await readJsonIfStored<StoredTeacherLogits>(store, key);
  return logits && (await store.isIntactBlob(logits.uri)) ? logits : undefined;
}
