import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface ListedFile {
  /** Path relative to the dataset root, always with forward slashes. */
  path: string;
  label: number;
}

export interface FolderListing {
  classes: string[];
  files: ListedFile[];
}

export class EmptyDatasetError extends Error {
  override name = 'EmptyDatasetError';
}

/**
 * Lists a folder with one sub-folder per class (the layout Keras' `image_dataset_from_directory` reads).
 * Classes are sorted by name; `maxImages` are taken round-robin across classes, deterministically.
 */
export async function listImageFolder(root: string, maxImages: number): Promise<FolderListing> {
  const entries = await readdir(root, { withFileTypes: true });
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  if (classes.length === 0) throw new EmptyDatasetError(`${root} has no class sub-folders (expected <root>/<class>/<image files>)`);
  const perClass = await Promise.all(
    classes.map(async (name, label) => {
      const files = await readdir(join(root, name), { withFileTypes: true });
      return files
        .filter((f) => f.isFile() && !f.name.startsWith('.'))
        .map((f) => f.name)
        .sort()
        .map((file) => ({ path: `${name}/${file}`, label }));
    }),
  );
  const files: ListedFile[] = [];
  for (let i = 0; files.length < maxImages; i++) {
    const round = perClass.map((list) => list[i]).filter((f): f is ListedFile => f !== undefined);
    if (round.length === 0) break;
    files.push(...round.slice(0, maxImages - files.length));
  }
  if (files.length === 0) throw new EmptyDatasetError(`${root} has class folders but no files in them`);
  return { classes, files };
}
