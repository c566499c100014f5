import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface FolderImage {
  /** Path relative to the dataset root, always with forward slashes. */
  path: string;
  label: number;
  /** A symbolic link: where it points is checked against the root when the file is read. */
  link?: true;
}

export interface FolderListing {
  classes: string[];
  /** Per class (by label), sorted by path. */
  perClass: FolderImage[][];
}

export class EmptyDatasetError extends Error {
  override name = 'EmptyDatasetError';
}

/**
 * Lists a folder with one sub-folder per class (the layout Keras' `image_dataset_from_directory` reads), walking each
 * class folder recursively. Classes are sorted by name; hidden entries are skipped; symbolic links to folders are not
 * followed. Every other file is listed, image or not: what cannot be decoded is reported, not silently skipped.
 * `onEntries` is called with the number of files and folders in each folder as the walk reads it.
 */
export async function listImageFolder(root: string, onEntries: (count: number) => void = () => {}): Promise<FolderListing> {
  const entries = await readdir(root, { withFileTypes: true });
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  if (classes.length === 0) {
    const files = entries.filter((e) => !e.isDirectory()).length;
    throw new EmptyDatasetError(
      `${root} has no class sub-folders (expected <root>/<class>/<image files>${files ? `; found ${files} files directly in the root` : ''})`,
    );
  }
  const perClass = await Promise.all(
    classes.map(async (name, label) => {
      const found: FoundFiles = { paths: [], links: new Set() };
      await walk(root, name, found, onEntries);
      // Paths as plain strings sort natively, several times faster than objects through a comparator.
      return found.paths.sort().map((path): FolderImage => (found.links.has(path) ? { path, label, link: true } : { path, label }));
    }),
  );
  if (perClass.every((images) => images.length === 0)) throw new EmptyDatasetError(`${root} has class folders (${classes.join(', ')}) but no files in them`);
  return { classes, perClass };
}

interface FoundFiles {
  paths: string[];
  /** The paths that are symbolic links. */
  links: Set<string>;
}

/** Adds the files under `relative` to `found`. */
async function walk(root: string, relative: string, found: FoundFiles, onEntries: (count: number) => void): Promise<void> {
  // Each folder in one call: stepping an async iterator per entry cost several times the reading (0.36 s against
  // 0.09 s for 70,000 files). The entries of one folder are held at once, as the listing holds them all anyway.
  const folders: string[] = [];
  let count = 0;
  for (const entry of await readdir(join(root, relative), { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    count++;
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory()) folders.push(path);
    else {
      found.paths.push(path);
      if (entry.isSymbolicLink()) found.links.add(path);
    }
  }
  onEntries(count);
  for (const folder of folders) await walk(root, folder, found, onEntries);
}
