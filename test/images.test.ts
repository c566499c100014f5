import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeImage } from '../lib/images';

describe('decodeImage', () => {
  it('decodes, resizes and scales to [0, 1] in grayscale and RGB', async () => {
    const red = await sharp({ create: { width: 40, height: 20, channels: 3, background: { r: 255, g: 0, b: 0 } } }).jpeg().toBuffer();
    const rgb = await decodeImage(red, { width: 8, height: 8, channels: 3 });
    assert.equal(rgb.length, 8 * 8 * 3);
    assert.ok(rgb[0]! > 0.9 && rgb[1]! < 0.1 && rgb[2]! < 0.1, `pixel ${rgb.slice(0, 3)}`);
    const gray = await decodeImage(red, { width: 8, height: 8, channels: 1 });
    assert.equal(gray.length, 64);
    assert.ok(gray.every((v) => v > 0.1 && v < 0.5));
  });

  it('honours EXIF orientation', async () => {
    // A 2x1 image, white on the left, rotated by EXIF orientation 3 (180 degrees): white ends up on the right.
    const raw = Buffer.from([255, 255, 255, 0, 0, 0]);
    const png = await sharp(raw, { raw: { width: 2, height: 1, channels: 3 } }).withMetadata({ orientation: 3 }).jpeg({ quality: 100 }).toBuffer();
    const pixels = await decodeImage(png, { width: 2, height: 1, channels: 1 });
    assert.ok(pixels[0]! < pixels[1]!, `expected the bright pixel on the right, got ${pixels}`);
  });

  it('refuses what is not an image', async () => {
    await assert.rejects(decodeImage(Buffer.from('definitely not an image'), { width: 8, height: 8, channels: 1 }));
  });
});
