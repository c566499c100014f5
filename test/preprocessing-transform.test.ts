import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { loadSettings } from '../lib/config';
import { withinLimits, type LimitedSpec } from '../lib/preprocessing/limits';
import { normalizeInto } from '../lib/preprocessing/normalize';
import { augment, augmentationSeed, toPixels } from '../lib/preprocessing/transform';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';

const spec = (overrides: Record<string, unknown> = {}): LimitedSpec => withinLimits(preprocessSpecSchema.parse(overrides), 1, loadSettings().limits);
const solid = (width: number, height: number, value: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: value, g: value, b: value } } });

describe('toPixels', () => {
  it('decodes every format sharp reads to the target shape, grayscale and RGB', async () => {
    const base = sharp({ create: { width: 30, height: 20, channels: 3, background: { r: 255, g: 0, b: 0 } } });
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"><rect width="30" height="20" fill="#ff0000"/></svg>');
    const encoded: Record<string, Buffer> = { svg };
    for (const format of ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const) encoded[format] = await base.clone().toFormat(format).toBuffer();
    for (const [format, bytes] of Object.entries(encoded)) {
      const rgb = await toPixels(bytes, spec({ width: 8, height: 6, channels: 3 }));
      assert.equal(rgb.length, 8 * 6 * 3, format);
      assert.ok(rgb[0]! > 200 && rgb[1]! < 60 && rgb[2]! < 60, `${format}: red pixel decoded as ${rgb.slice(0, 3)}`);
      const gray = await toPixels(bytes, spec({ width: 8, height: 6, channels: 1 }));
      assert.equal(gray.length, 8 * 6, format);
      assert.ok(gray.every((v) => v > 30 && v < 160), `${format}: red in grayscale is mid-dark, got ${gray[0]}`);
    }
  });

  it('honours EXIF orientation', async () => {
    // A 2x1 image, white on the left, rotated by EXIF orientation 3 (180 degrees): white ends up on the right.
    const raw = Buffer.from([255, 255, 255, 0, 0, 0]);
    const jpeg = await sharp(raw, { raw: { width: 2, height: 1, channels: 3 } }).withMetadata({ orientation: 3 }).jpeg({ quality: 100 }).toBuffer();
    const pixels = await toPixels(jpeg, spec({ width: 4, height: 4, channels: 1 }));
    assert.ok(pixels[0]! < pixels[3]!, `expected the bright side on the right, got ${pixels.slice(0, 4)}`);
  });

  it('resizes with fill, cover and contain', async () => {
    const wide = await solid(40, 20, 255).png().toBuffer();
    const fill = await toPixels(wide, spec({ width: 10, height: 10, fit: 'fill' }));
    const cover = await toPixels(wide, spec({ width: 10, height: 10, fit: 'cover' }));
    const contain = await toPixels(wide, spec({ width: 10, height: 10, fit: 'contain', background: 0 }));
    assert.ok(fill.every((v) => v === 255) && cover.every((v) => v === 255));
    // Letterboxed: the image is 10x5 in the middle, black above and below.
    assert.deepEqual([contain[0], contain[5 * 10], contain[99]], [0, 255, 0]);
  });

  it('flattens transparency onto the background colour', async () => {
    const transparent = await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const pixels = await toPixels(transparent, spec({ width: 4, height: 4, background: 200 }));
    assert.ok(pixels.every((v) => v === 200), `got ${pixels}`);
  });

  it('takes raw pixels (IDX records) as they are when the shape already matches', async () => {
    const pixels = Uint8Array.from({ length: 28 * 28 }, (_, i) => i % 256);
    assert.equal(await toPixels({ pixels, width: 28, height: 28, channels: 1 }, spec()), pixels);
    const resized = await toPixels({ pixels, width: 28, height: 28, channels: 1 }, spec({ width: 14, height: 14, channels: 3 }));
    assert.equal(resized.length, 14 * 14 * 3);
  });
});

describe('normalizeInto', () => {
  it('scales, then subtracts the mean and divides by the standard deviation per channel', () => {
    const out = new Float32Array(8);
    const rgb = spec({ channels: 3, normalization: { scale: 1 / 255, mean: [0.5, 0, 1], std: [0.5, 1, 2] } });
    normalizeInto(Uint8Array.from([255, 255, 255, 0, 0, 0]), rgb, out, 2);
    assert.deepEqual(Array.from(out), [0, 0, 1, 1, 0, -1, 0, -0.5]);
    normalizeInto(Uint8Array.from([0, 51]), spec(), out, 0);
    assert.deepEqual(Array.from(out.slice(0, 2)), [0, Math.fround(0.2)]);
  });

  it('rejects a mean or std with the wrong number of channels', () => {
    const result = preprocessSpecSchema.safeParse({ channels: 1, normalization: { mean: [0.1, 0.2, 0.3] } });
    assert.equal(result.success, false);
    assert.match(result.error!.issues[0]!.message, /1 or 1 values|one per channel/);
  });
});

describe('augment', () => {
  const gradient = Uint8Array.from({ length: 16 * 16 }, (_, i) => (i % 16) * 16);
  const augmentation = { copies: 1, seed: 0, horizontalFlip: true, verticalFlip: false, rotationDegrees: 15, cropFraction: 0.2, brightness: 0.3 };
  const base = spec({ width: 16, height: 16 });

  it('is reproducible from its seed, varies between seeds and keeps the shape', async () => {
    const a = await augment(gradient, base, augmentation, 42);
    const b = await augment(gradient, base, augmentation, 42);
    const c = await augment(gradient, base, augmentation, 43);
    assert.equal(a.length, gradient.length);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.notEqual(augmentationSeed(augmentation, 'ab'.repeat(32), 1), augmentationSeed(augmentation, 'ab'.repeat(32), 2));
    assert.notEqual(augmentationSeed(augmentation, 'ab'.repeat(32), 1), augmentationSeed({ ...augmentation, seed: 1 }, 'ab'.repeat(32), 1));
  });

  it('mirrors an image when it flips, and only flips with the other operations off', async () => {
    const flipOnly = { ...augmentation, rotationDegrees: 0, cropFraction: 0, brightness: 0 };
    const mirrored = Uint8Array.from(gradient, (_, i) => gradient[Math.floor(i / 16) * 16 + (15 - (i % 16))]!);
    const outcomes = await Promise.all(Array.from({ length: 8 }, (_, seed) => augment(gradient, base, flipOnly, seed)));
    assert.ok(outcomes.every((o) => Buffer.compare(o, gradient) === 0 || Buffer.compare(o, mirrored) === 0));
    assert.ok(outcomes.some((o) => Buffer.compare(o, mirrored) === 0) && outcomes.some((o) => Buffer.compare(o, gradient) === 0));
  });

  it('works on RGB images', async () => {
    const rgb = Uint8Array.from({ length: 16 * 16 * 3 }, (_, i) => i % 251);
    const out = await augment(rgb, spec({ width: 16, height: 16, channels: 3 }), augmentation, 7);
    assert.equal(out.length, rgb.length);
  });
});
