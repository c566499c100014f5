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
 */
export async function listImageFolder(root: string): Promise<FolderListing> {
  const entries = await readdir(root, { withFileTypes: true });
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  if (classes.length === 0) {
    const files = entries.filter((e) => !e.isDirectory()).length;
    throw new EmptyDatasetError(
      `${root} has no class sub-folders (expected <root>/<class>/<image files>${files ? `; found ${files} files directly in the root` : ''})`,
    );
  }
  const perClass = await Promise.all(
    classes.map(async (name, label) => (await walk(root, name)).sort(byPath).map((file) => ({ ...file, label }))),
  );
  if (perClass.every((images) => images.length === 0)) throw new EmptyDatasetError(`${root} has class folders (${classes.join(', ')}) but no files in them`);
  return { classes, perClass };
}

const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

async function walk(root: string, relative: string): Promise<Omit<FolderImage, 'label'>[]> {
  const entries = await readdir(join(root, relative), { withFileTypes: true });
  const found: Omit<FolderImage, 'label'>[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory()) found.push(...(await walk(root, path)));
    else found.push(entry.isSymbolicLink() ? { path, link: true } : { path });
  }
  return found;
}
