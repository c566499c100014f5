import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import type { QuarantineReason } from '../../lib/preprocessing/quarantine';

/** A PNG whose header claims `width` x `height` pixels but whose data is tiny: a decompression bomb's signature. */
export async function pixelBomb(width: number, height: number): Promise<Buffer> {
  const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer();
  // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), ... CRC over type and data.
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

/** A distinct small image: colour and size vary with `seed`, so no two have the same content. */
export function distinctImage(seed: number): sharp.Sharp {
  return sharp({ create: { width: 20 + (seed % 7), height: 16 + (seed % 5), channels: 3, background: { r: (seed * 37) % 256, g: (seed * 91) % 256, b: (seed * 53) % 256 } } });
}

const FORMATS = ['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif'] as const;

export interface MessyDataset {
  /** Every file that must be left out, with the reason it must be reported under. */
  expectedLeftOut: Record<string, QuarantineReason>;
  /** Distinct good images per class. */
  goodPerClass: Record<string, number>;
}

/**
 * Writes a dataset folder with good images in every format sharp reads (SVG included, one in a nested folder) and one
 * file of each bad kind: zero-byte, text, truncated, corrupt, a pixel bomb, over the byte limit, a link out of the
 * root, a dangling link, a FIFO, an exact duplicate in another class, and (when not running as root) an unreadable file.
 */
export async function writeMessyDataset(root: string, outside: string, goodPerClass = 8): Promise<MessyDataset> {
  const classes = ['bird', 'cat', 'dog'];
  const goodCount: Record<string, number> = {};
  let seed = 1;
  for (const [c, name] of classes.entries()) {
    mkdirSync(join(root, name, 'nested'), { recursive: true });
    for (let i = 0; i < goodPerClass - 1; i++) {
      const format = FORMATS[(seed + i) % FORMATS.length]!;
      await distinctImage(seed++).toFormat(format).toFile(join(root, name, `${i}.${format === 'jpeg' ? 'jpg' : format}`));
    }
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"><circle cx="12" cy="12" r="${4 + 3 * c}" fill="#${c}8f"/></svg>`;
    writeFileSync(join(root, name, 'nested', 'drawing.svg'), svg);
    goodCount[name] = goodPerClass;
    writeFileSync(join(root, name, '.DS_Store'), 'hidden files are skipped, not reported');
  }
  const png = await distinctImage(999).png().toBuffer();
  const corrupt = Buffer.from(png);
  for (let i = 40; i < corrupt.length - 12; i++) corrupt[i]! ^= 0x5a;
  const expected: Record<string, QuarantineReason> = {
    'bird/empty.png': 'empty',
    'bird/readme.txt': 'not_an_image',
    'bird/truncated.png': 'truncated',
    'cat/corrupt.png': 'corrupt',
    'cat/bomb.png': 'too_large',
    'cat/huge.jpg': 'too_large',
    'dog/escape.png': 'outside_root',
    'dog/dangling.png': 'unreadable',
    'dog/fifo.png': 'not_a_file',
    'dog/zz-copy-of-bird-original.png': 'duplicate',
  };
  writeFileSync(join(root, 'bird/empty.png'), '');
  writeFileSync(join(root, 'bird/readme.txt'), 'not an image at all\n');
  writeFileSync(join(root, 'bird/truncated.png'), png.subarray(0, Math.floor(png.length / 2)));
  writeFileSync(join(root, 'cat/corrupt.png'), corrupt);
  writeFileSync(join(root, 'cat/bomb.png'), await pixelBomb(100_000, 100_000));
  writeFileSync(join(root, 'cat/huge.jpg'), randomBytes(1_100_000));
  mkdirSync(outside, { recursive: true });
  await distinctImage(1000).png().toFile(join(outside, 'secret.png'));
  symlinkSync(join(outside, 'secret.png'), join(root, 'dog/escape.png'));
  symlinkSync(join(root, 'dog/no-such-file.png'), join(root, 'dog/dangling.png'));
  execFileSync('mkfifo', [join(root, 'dog/fifo.png')]);
  // Listed after the original (classes are taken round-robin, files in name order): the later copy is left out.
  const original = await distinctImage(5000).png().toBuffer();
  writeFileSync(join(root, 'bird/original.png'), original);
  writeFileSync(join(root, 'dog/zz-copy-of-bird-original.png'), original);
  goodCount.bird!++;
  if (process.getuid?.() !== 0) {
    const locked = join(root, 'cat/locked.png');
    await distinctImage(1001).png().toFile(locked);
    chmodSync(locked, 0o000);
    expected['cat/locked.png'] = 'unreadable';
  }
  return { expectedLeftOut: expected, goodPerClass: goodCount };
}
