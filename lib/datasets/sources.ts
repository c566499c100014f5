import { access } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ArtifactPathError, confine } from '../artifacts';
import { settings } from '../config';
import { parseS3Url } from '../s3-artifacts';
import type { DatasetSourceDescriptor } from '../schemas/preprocess';
import { invalidInput } from '../validate';
import { materializeMnistDigits } from './mnist-digits';

export const FASHION_MNIST_CLASSES = ['T-shirt_top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle_boot'];
/** Where Debian's dataset-fashion-mnist package puts the IDX files. */
export const DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

export type ResolvedSource =
  | { format: 'folder'; root: string }
  /** `images` and `labels` are paths relative to `root`, read confined to it. */
  | { format: 'idx'; root: string; images: string[]; labels: string[]; classes?: string[] }
  /** Objects under `s3://bucket/prefix/<class>/…`. */
  | { format: 's3'; bucket: string; prefix: string };

/** A path named in the workflow input, resolved under the datasets root; anything outside it is a user error. */
export function datasetPath(path: string, field: string): string {
  try {
    return confine(settings().datasetsRoot, path, 'dataset');
  } catch (err) {
    if (err instanceof ArtifactPathError) throw invalidInput(field, err.message);
    throw err;
  }
}

/** Turns a source description into absolute paths on this worker, materializing built-in sets when needed. */
export async function resolveSource(source: DatasetSourceDescriptor): Promise<ResolvedSource> {
  switch (source.format) {
    case 'folder':
      return { format: 'folder', root: datasetPath(source.path, 'dataset.source') };
    case 'idx': {
      const root = settings().datasetsRoot;
      const underRoot = (field: string) => (path: string) => relative(root, datasetPath(path, field));
      return {
        format: 'idx',
        root,
        images: source.images.map(underRoot('dataset.source.images')),
        labels: source.labels.map(underRoot('dataset.source.labels')),
        classes: source.classes,
      };
    }
    case 's3':
      try {
        return { format: 's3', ...parseS3Url(source.url, 'dataset.source') };
      } catch (err) {
        if (err instanceof ArtifactPathError) throw invalidInput('dataset.source', err.message);
        throw err;
      }
    case 'builtin':
      if (source.name === 'mnist-digits') {
        return { format: 'folder', root: await materializeMnistDigits(join(settings().dataDir, 'builtin', source.name)) };
      }
      return fashionMnist();
  }
}

async function fashionMnist(): Promise<ResolvedSource> {
  for (const root of [join(settings().datasetsRoot, 'fashion-mnist'), DEBIAN_FASHION_MNIST]) {
    const images = ['train', 't10k'].map((part) => `${part}-images-idx3-ubyte.gz`);
    const labels = ['train', 't10k'].map((part) => `${part}-labels-idx1-ubyte.gz`);
    try {
      await Promise.all([...images, ...labels].map((file) => access(join(root, file))));
      return { format: 'idx', root, images, labels, classes: FASHION_MNIST_CLASSES };
    } catch {
      // Not here; try the next place.
    }
  }
  throw invalidInput(
    'dataset.source',
    `builtin:fashion-mnist is not provisioned on this worker: run \`npm run provision:fashion-mnist\` (copies Debian's dataset-fashion-mnist into ${join(settings().datasetsRoot, 'fashion-mnist')})`,
  );
}
