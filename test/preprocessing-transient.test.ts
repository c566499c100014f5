import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { loadSettings } from '../lib/config';
import { withinLimits } from '../lib/preprocessing/limits';
import { QuarantineError, quarantineReasonOf, TransientReadError } from '../lib/preprocessing/quarantine';
import { toPixels } from '../lib/preprocessing/transform';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';
import { seededRandom } from '../lib/random';
import { distinctImage } from './helpers/messy-dataset';
import { temporaryDataDir } from './helpers/temporal';

/** The error toPixels throws for `bytes`, or undefined when it decodes. */
async function decodeError(bytes: Buffer): Promise<unknown> {
  const spec = withinLimits(preprocessSpecSchema.parse({ width: 8, height: 8, channels: 3 }), 1, loadSettings().limits);
  return toPixels(bytes, spec).then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('a failure of the worker fails the batch; a bad file is left out', () => {
  it('files every decode failure of damaged images of each format under a content reason', async () => {
    const random = seededRandom(11);
    const base = sharp({ create: { width: 48, height: 32, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } });
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"><rect width="30" height="20" fill="#f00"/></svg>');
    const encoded: Record<string, Buffer> = { svg };
    for (const format of ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const) encoded[format] = await base.clone().toFormat(format).toBuffer();
    let failures = 0;
    for (const [format, bytes] of Object.entries(encoded)) {
      for (let trial = 0; trial < 40; trial++) {
        const damaged = trial % 2 === 0 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : Buffer.from(bytes);
        if (trial % 2 === 1) for (let i = 0; i < 10; i++) damaged[Math.floor(random() * damaged.length)] = Math.floor(random() * 256);
        const err = await decodeError(damaged);
        if (err === undefined) continue;
        failures++;
        assert.ok(quarantineReasonOf(err), `${format}: "${(err as Error).message}" was taken for a failure of the worker`);
      }
    }
    assert.ok(failures > 100, `only ${failures} damaged images failed to decode`);
  });

  it('refuses to quarantine what is not about the file: errno codes, sharp out of memory, a missing input, a dead reader', async () => {
    const missing = await sharp(join(temporaryDataDir(), 'gone.png')).toBuffer().catch((err: unknown) => err);
    assert.match((missing as Error).message, /Input file is missing/);
    const failures: unknown[] = [
      missing,
      new Error('vips_image_write_to_memory: out of memory -- size == 87MB'),
      new Error('Input buffer has corrupt header: pngload_buffer: out of memory'),
      new Error('file reader thread exited with code 1'),
      new TransientReadError('EMFILE: too many open files, open \'x/truncated.png\'', 'EMFILE'),
      ...['EMFILE', 'ENFILE', 'ENOMEM', 'EIO', 'EAGAIN'].map((code) => Object.assign(new Error(`${code}: read 'x/corrupt.png'`), { code })),
    ];
    for (const err of failures) assert.equal(quarantineReasonOf(err), undefined, (err as Error).message);
    assert.equal(quarantineReasonOf(Object.assign(new Error('ENOENT'), { code: 'ENOENT' })), 'unreadable');
    assert.equal(quarantineReasonOf(new QuarantineError('not_a_file', 'is a FIFO')), 'not_a_file');
  });

  it('fails a batch whose re-reads run out of file descriptors, caches nothing, and keeps every image on retry', async () => {
    const dataDir = temporaryDataDir();
    const root = join(dataDir, 'datasets', 'many');
    for (let i = 0; i < 100; i++) {
      mkdirSync(join(root, `class-${i % 2}`), { recursive: true });
      await distinctImage(3000 + i).png().toFile(join(root, `class-${i % 2}`, `${i}.png`));
    }
    const helper = join(__dirname, 'helpers', 'transient-batch.js');
    const output = execFileSync('bash', ['-c', 'ulimit -n 256 && exec "$@"', 'bash', process.execPath, helper, root, join(dataDir, 'artifacts')], { encoding: 'utf8' });
    const result = JSON.parse(output) as {
      listed: number;
      descriptorsTaken: number;
      exhausted: { failed: boolean; name?: string; code?: string; leftOut?: { reason: string }[] };
      cacheEntries: number;
      retried: { kept: number; leftOut: unknown[]; cacheHit: boolean };
    };
    assert.equal(result.listed, 100);
    assert.ok(result.descriptorsTaken > 0);
    assert.equal(result.exhausted.failed, true, `the batch completed, leaving out ${JSON.stringify(result.exhausted.leftOut?.slice(0, 2))}...`);
    assert.equal(result.exhausted.name, 'TransientReadError');
    assert.equal(result.exhausted.code, 'EMFILE');
    assert.equal(result.cacheEntries, 0, 'nothing is cached for the failed batch');
    assert.deepEqual(result.retried, { kept: 100, leftOut: [], cacheHit: false });
  });
});
