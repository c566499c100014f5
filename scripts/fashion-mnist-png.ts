/**
 * Writes Fashion-MNIST's 70,000 images (train and t10k IDX files) as PNG files, one folder per class:
 * `<out>/<class>/<train|t10k>-<index>.png`. The tree appears complete or not at all.
 *
 *   node dist/scripts/fashion-mnist-png.js <folder with the IDX files> <out folder>
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { publishDirectory } from '../lib/atomic-write';
import { mapWithConcurrency } from '../lib/concurrency';
import { settings } from '../lib/config';
import { readIdxFile } from '../lib/datasets/idx';
import { FASHION_MNIST_CLASSES } from '../lib/datasets/sources';

async function main(): Promise<void> {
  const [idxDir, outArg] = process.argv.slice(2);
  if (!idxDir || !outArg) throw new Error('usage: fashion-mnist-png <idx folder> <out folder>');
  const out = resolve(outArg);
  if (existsSync(out)) {
    console.log(`Fashion-MNIST PNG tree already in ${out}`);
    return;
  }
  const started = Date.now();
  let written = 0;
  await publishDirectory(out, async (staging) => {
    written = await writePngTree(idxDir, staging);
  });
  console.log(`Fashion-MNIST as ${written} PNG files in ${out} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

async function writePngTree(idxDir: string, staging: string): Promise<number> {
  await Promise.all(FASHION_MNIST_CLASSES.map((name) => mkdir(join(staging, name), { recursive: true })));
  let written = 0;
  for (const part of ['train', 't10k']) {
    const images = await readIdxFile(idxDir, `${part}-images-idx3-ubyte.gz`, settings().limits.maxIdxBytes);
    const labels = await readIdxFile(idxDir, `${part}-labels-idx1-ubyte.gz`, settings().limits.maxIdxBytes);
    const [count, height, width] = images.shape as [number, number, number];
    const size = height * width;
    const indices = Array.from({ length: count }, (_, i) => i);
    await mapWithConcurrency(indices, 16, async (i) => {
      const file = join(staging, FASHION_MNIST_CLASSES[labels.data[i]!]!, `${part}-${String(i).padStart(5, '0')}.png`);
      await sharp(images.data.subarray(i * size, (i + 1) * size), { raw: { width, height, channels: 1 } }).png().toFile(file);
      if (++written % 10_000 === 0) console.log(`  ${written} PNG files written`);
    });
  }
  return written;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
