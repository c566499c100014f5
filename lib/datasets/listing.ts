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

/** `index.json` of a listing artifact; the images themselves are in files of `LISTING_CHUNK` images each. */
export interface ListingIndex {
  source: DatasetSourceDescriptor;
  classes: string[];
  count: number;
  batchSize: number;
  batches: number;
  idxFiles: IdxImageFile[];
}

export const LISTING_INDEX = 'index.json';
/** Images per file of a listing, whatever the batch size: a batch reads only the few files its slice spans. */
export const LISTING_CHUNK = 1000;
const chunkFile = (chunk: number) => `images-${String(chunk).padStart(6, '0')}.json`;

/** The files of a listing artifact: its index and its images, `LISTING_CHUNK` to a file. */
export function listingFiles(index: ListingIndex, images: ListedImage[]): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = { [LISTING_INDEX]: Buffer.from(JSON.stringify(index)) };
  for (let start = 0; start < images.length; start += LISTING_CHUNK) {
    files[chunkFile(start / LISTING_CHUNK)] = Buffer.from(JSON.stringify(images.slice(start, start + LISTING_CHUNK)));
  }
  return files;
}

/** The images of one batch, read from the files of the listing that hold them. */
export async function batchImages(index: ListingIndex, batch: number, readFile: (name: string) => Promise<ListedImage[]>): Promise<ListedImage[]> {
  const start = batch * index.batchSize;
  const end = Math.min(start + index.batchSize, index.count);
  const images: ListedImage[] = [];
  for (let chunk = Math.floor(start / LISTING_CHUNK); chunk * LISTING_CHUNK < end; chunk++) {
    const offset = chunk * LISTING_CHUNK;
    for (const image of (await readFile(chunkFile(chunk))).slice(Math.max(0, start - offset), end - offset)) images.push(image);
  }
  return images;
}

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
