import type { ArtifactStore } from './artifacts';

/** One stored part of a list too long for workflow history, linked to the part stored before it. */
export interface ChainedPart {
  previousUri: string | null;
}

/** The items of `last` and of every part before it, following the links: newest part first. */
export async function readChain<P extends ChainedPart, T>(store: ArtifactStore, last: P, items: (part: P) => T[]): Promise<T[]> {
  const all = [...items(last)];
  for (let uri = last.previousUri; uri; ) {
    const part = await store.readJson<P>(uri);
    all.push(...items(part));
    uri = part.previousUri;
  }
  return all;
}
