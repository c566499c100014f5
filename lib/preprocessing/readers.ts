import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { relative, isAbsolute, sep } from 'node:path';
import type { LocalArtifactStore } from '../artifacts';
import { confine } from '../artifacts';
import type { IdxImageFile, ListedImage } from '../datasets/listing';
import type { PreprocessSpec } from '../schemas/preprocess';
import { QuarantineError } from './quarantine';
import type { ImageInput } from './transform';

export interface ReadImage {
  input: ImageInput;
  sha256: string;
  bytes: number;
}

/** Reads the bytes of listed images; throws `QuarantineError` (or a file-system error) for what cannot be read. */
export interface ImageReader {
  read(image: ListedImage): Promise<ReadImage>;
  close(): Promise<void>;
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/**
 * Reads image files under a folder root. Regular files are opened without following links (a file swapped for a
 * link after listing is refused); listed links must resolve inside the root. FIFOs and devices are refused without
 * blocking on them.
 */
export async function folderReader(root: string, spec: PreprocessSpec): Promise<ImageReader> {
  const realRoot = await realpath(root);
  return {
    async read(image) {
      const path = confine(root, image.path, 'dataset file');
      if (image.link) {
        const target = await realpath(path);
        const rel = relative(realRoot, target);
        if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
          throw new QuarantineError('outside_root', `links to ${target}, outside the dataset root`);
        }
      }
      const flags = constants.O_RDONLY | constants.O_NONBLOCK | (image.link ? 0 : constants.O_NOFOLLOW);
      let handle: FileHandle;
      try {
        handle = await open(path, flags);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new QuarantineError('unreadable', 'became a symbolic link after listing');
        throw err;
      }
      try {
        const info = await handle.stat();
        if (!info.isFile()) throw new QuarantineError('not_a_file', info.isDirectory() ? 'is a directory' : 'is not a regular file');
        if (info.size === 0) throw new QuarantineError('empty', 'zero-byte file');
        if (info.size > spec.maxFileBytes) throw new QuarantineError('too_large', `${info.size} bytes, over the ${spec.maxFileBytes}-byte limit`);
        const data = await handle.readFile();
        return { input: data, sha256: sha256(data), bytes: data.length };
      } finally {
        await handle.close();
      }
    },
    async close() {},
  };
}

/** Reads records of IDX image files already decompressed into the artifact store, in place. */
export function idxReader(files: IdxImageFile[], store: LocalArtifactStore): ImageReader {
  const handles = new Map<number, Promise<FileHandle>>();
  const handleOf = (file: number) => {
    let handle = handles.get(file);
    if (!handle) {
      handle = open(store.pathOf(files[file]!.pixelsUri), 'r');
      handles.set(file, handle);
    }
    return handle;
  };
  return {
    async read(image) {
      const [fileIndex, record] = image.record!;
      const file = files[fileIndex]!;
      const size = file.width * file.height;
      const pixels = new Uint8Array(size);
      const { bytesRead } = await (await handleOf(fileIndex)).read(pixels, 0, size, record * size);
      if (bytesRead !== size) throw new QuarantineError('truncated', `record ${record} ends after ${bytesRead} of ${size} bytes`);
      return { input: { pixels, width: file.width, height: file.height, channels: 1 }, sha256: sha256(pixels), bytes: size };
    },
    async close() {
      await Promise.all([...handles.values()].map(async (h) => (await h).close()));
    },
  };
}
