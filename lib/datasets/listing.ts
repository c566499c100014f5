import type { DatasetSourceDescriptor } from '../schemas/preprocess';

/** One image of a listing: a file under a folder root, or a record of an IDX file. */
export interface ListedImage {
  /** Path relative to the dataset root (IDX records: `<file>#<index>`), as reported. */
  path: string;
  label: number;
  /** A symbolic link: where it points is checked against the root when it is read. */
  link?: true;
  /** IDX records: [index into `idxFiles`, record number]. */
  record?: [file: number, index: number];
}

/** An IDX image file, decompressed into the artifact store so batches read their records in place. */
export interface IdxImageFile {
  path: string;
  /** Raw pixels of every record, back to back (the IDX payload without its header). */
  pixelsUri: string;
  count: number;
  width: number;
  height: number;
}

/** `index.json` of a listing artifact; the images themselves are in one `batch-NNNNNN.json` per batch. */
export interface ListingIndex {
  source: DatasetSourceDescriptor;
  classes: string[];
  count: number;
  batchSize: number;
  batches: number;
  idxFiles: IdxImageFile[];
}

export const LISTING_INDEX = 'index.json';
export const batchFile = (batch: number) => `batch-${String(batch).padStart(6, '0')}.json`;

/** Takes images round-robin across classes (each class in its own order), up to `maxImages` when given. */
export function roundRobin<T>(perClass: T[][], maxImages: number | null): T[] {
  const limit = maxImages ?? Infinity;
  const longest = Math.max(0, ...perClass.map((list) => list.length));
  const out: T[] = [];
  for (let i = 0; i < longest && out.length < limit; i++) {
    for (const list of perClass) {
      if (i < list.length) out.push(list[i]!);
      if (out.length >= limit) break;
    }
  }
  return out;
}
