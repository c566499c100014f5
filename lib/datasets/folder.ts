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
 * `onEntry` is called for every file and folder as the walk reaches it.
 */
export async function listImageFolder(root: string, onEntry: () => void = () => {}): Promise<FolderListing> {
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
      const files: Omit<FolderImage, 'label'>[] = [];
      await walk(root, name, files, onEntry);
      return files.sort(byPath).map((file) => ({ ...file, label }));
    }),
  );
  if (perClass.every((images) => images.length === 0)) throw new EmptyDatasetError(`${root} has class folders (${classes.join(', ')}) but no files in them`);
  return { classes, perClass };
}

const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Adds the files under `relative` to `found`. */
async function walk(root: string, relative: string, found: Omit<FolderImage, 'label'>[], onEntry: () => void): Promise<void> {
  // Each folder in one call: stepping an async iterator per entry cost several times the reading (0.36 s against
  // 0.09 s for 70,000 files). The entries of one folder are held at once, as the listing holds them all anyway.
  for (const entry of await readdir(join(root, relative), { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    onEntry();
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory()) await walk(root, path, found, onEntry);
    else found.push(entry.isSymbolicLink() ? { path, link: true } : { path });
  }
}
