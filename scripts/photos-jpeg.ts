/**
 * Writes a folder tree of synthetic 640x480 baseline JPEG "photos", 10 class folders: smooth gradients, soft-edged
 * shapes and sensor-like noise, so that they decode and compress about like camera pictures (roughly 100 KB each at
 * quality 88). The same seed always gives the same bytes. The tree appears complete or not at all; an existing one is
 * kept.
 *
 *   node dist/scripts/photos-jpeg.js <out folder> [count, default 2000] [seed, default 0]
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { publishDirectory } from '../lib/atomic-write';
import { seededRandom } from '../lib/random';

export const PHOTO_WIDTH = 640;
export const PHOTO_HEIGHT = 480;
export const PHOTO_CLASSES = 10;
const CHANNELS = 3;
const QUALITY = 88;
/** Range of the per-pixel sensor noise, in 8-bit levels. */
const NOISE = 16;

type Colour = [number, number, number];

/** One picture's pixels (RGB, row-major), drawn from `random` alone. Class `label` tints its palette. */
function drawPhoto(random: () => number, label: number): Uint8Array {
  const width = PHOTO_WIDTH;
  const height = PHOTO_HEIGHT;
  const hue = (label / PHOTO_CLASSES) * 2 * Math.PI;
  const colour = (): Colour => {
    const shade = 40 + random() * 170;
    const channel = (c: number) => clamp(shade + 60 * Math.cos(hue + (c * 2 * Math.PI) / 3) + (random() - 0.5) * 80);
    return [channel(0), channel(1), channel(2)];
  };
  const pixels = new Float32Array(width * height * CHANNELS);
  // Background: a bilinear blend of four corner colours, like sky and ground under uneven light.
  const [topLeft, topRight, bottomLeft, bottomRight] = [colour(), colour(), colour(), colour()];
  for (let y = 0; y < height; y++) {
    const v = y / (height - 1);
    for (let x = 0; x < width; x++) {
      const u = x / (width - 1);
      const i = (y * width + x) * CHANNELS;
      for (let c = 0; c < CHANNELS; c++) {
        pixels[i + c] = (1 - v) * ((1 - u) * topLeft[c]! + u * topRight[c]!) + v * ((1 - u) * bottomLeft[c]! + u * bottomRight[c]!);
      }
    }
  }
  // Objects: ellipses and rectangles with soft edges and their own shading.
  const shapes = 4 + Math.floor(random() * 8);
  for (let s = 0; s < shapes; s++) {
    const cx = random() * width;
    const cy = random() * height;
    const rx = 15 + random() * 150;
    const ry = 15 + random() * 120;
    const edge = 1 + random() * 4;
    const fill = colour();
    const shading = (random() - 0.5) * 0.8;
    const ellipse = random() < 0.5;
    const alpha = 0.6 + random() * 0.4;
    for (let y = Math.max(0, Math.floor(cy - ry - edge)); y < Math.min(height, Math.ceil(cy + ry + edge)); y++) {
      for (let x = Math.max(0, Math.floor(cx - rx - edge)); x < Math.min(width, Math.ceil(cx + rx + edge)); x++) {
        const dx = (x - cx) / rx;
        const dy = (y - cy) / ry;
        // Signed distance outside the shape, in pixels (approximately, for the ellipse).
        const outside = ellipse ? (Math.sqrt(dx * dx + dy * dy) - 1) * Math.min(rx, ry) : Math.max((Math.abs(dx) - 1) * rx, (Math.abs(dy) - 1) * ry);
        const cover = alpha * Math.min(1, Math.max(0, 0.5 - outside / edge));
        if (cover <= 0) continue;
        const light = 1 + shading * dy;
        const i = (y * width + x) * CHANNELS;
        for (let c = 0; c < CHANNELS; c++) pixels[i + c] = pixels[i + c]! * (1 - cover) + fill[c]! * light * cover;
      }
    }
  }
  // Texture (foliage, fabric, gravel: two octaves of value noise) and sensor noise, in one pass.
  const coarse = valueNoise(random, width, height, 24);
  const fine = valueNoise(random, width, height, 3);
  const texture = 20 + random() * 40;
  const out = new Uint8Array(pixels.length);
  for (let p = 0, i = 0; p < width * height; p++) {
    const grain = (coarse[p]! * 0.6 + fine[p]! * 0.4 - 0.5) * texture;
    for (let c = 0; c < CHANNELS; c++, i++) out[i] = clamp(pixels[i]! + grain + (random() - 0.5) * NOISE);
  }
  return out;
}

/** Smooth random values in [0, 1]: a grid of random values every `cell` pixels, bilinearly interpolated. */
function valueNoise(random: () => number, width: number, height: number, cell: number): Float32Array {
  const columns = Math.ceil(width / cell) + 1;
  const grid = Float32Array.from({ length: columns * (Math.ceil(height / cell) + 1) }, () => random());
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const gy = Math.floor(y / cell);
    const v = y / cell - gy;
    for (let x = 0; x < width; x++) {
      const gx = Math.floor(x / cell);
      const u = x / cell - gx;
      const g = gy * columns + gx;
      out[y * width + x] = (1 - v) * ((1 - u) * grid[g]! + u * grid[g + 1]!) + v * ((1 - u) * grid[g + columns]! + u * grid[g + columns + 1]!);
    }
  }
  return out;
}

function clamp(value: number): number {
  return Math.max(0, Math.min(255, Math.round(value)));
}

/** The `index`th photo of the tree made with `seed`, as baseline JPEG bytes. */
export function photoJpeg(seed: number, index: number): Promise<Buffer> {
  const random = seededRandom((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0);
  const pixels = drawPhoto(random, index % PHOTO_CLASSES);
  return sharp(pixels, { raw: { width: PHOTO_WIDTH, height: PHOTO_HEIGHT, channels: CHANNELS } })
    .jpeg({ quality: QUALITY, progressive: false, mozjpeg: false, chromaSubsampling: '4:2:0' })
    .toBuffer();
}

/** `<out>/class-<k>/photo-<index>.jpg` for `count` photos, images dealt to the classes in turn; kept when it exists. */
export async function ensurePhotoTree(out: string, count = 2000, seed = 0): Promise<void> {
  if (existsSync(out)) return;
  const started = Date.now();
  await publishDirectory(out, async (staging) => {
    const classes = Array.from({ length: PHOTO_CLASSES }, (_, k) => join(staging, `class-${k}`));
    await Promise.all(classes.map((dir) => mkdir(dir)));
    for (let index = 0; index < count; index++) {
      await writeFile(join(classes[index % PHOTO_CLASSES]!, `photo-${String(index).padStart(5, '0')}.jpg`), await photoJpeg(seed, index));
    }
  });
  console.log(`${count} ${PHOTO_WIDTH}x${PHOTO_HEIGHT} JPEG photos in ${out} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

if (require.main === module) {
  const [out, count, seed] = process.argv.slice(2);
  if (!out) {
    console.error('usage: photos-jpeg <out folder> [count] [seed]');
    process.exit(1);
  }
  ensurePhotoTree(resolve(out), count ? Number(count) : undefined, seed ? Number(seed) : undefined).catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
