import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadSettings } from '../lib/config';
import { decode, DecoderThreadError, type Decoder } from '../lib/preprocessing/decoders';
import { FAST_PATH_MAX_PIXELS, fastPathVerdict } from '../lib/preprocessing/decoders/header';
import { decodedPixels } from '../lib/preprocessing/decoders/tensorflow';
import { withinLimits, type LimitedSpec } from '../lib/preprocessing/limits';
import { quarantineReasonOf } from '../lib/preprocessing/quarantine';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';
import { formatMatrix } from './helpers/image-formats';
import { pixelBomb } from './helpers/messy-dataset';
import { withDamagedImageData } from './helpers/png';

const spec = (overrides: Record<string, unknown> = {}): LimitedSpec => withinLimits(preprocessSpecSchema.parse(overrides), 1, loadSettings().limits);

/** Which decoder each variant of the format matrix must get, from its bytes alone. */
const ROUTES: Record<string, Decoder> = {
  'png rgb': 'tensorflow',
  'png rgba': 'tensorflow',
  'png gray': 'tensorflow',
  'png palette': 'tensorflow',
  'png interlaced': 'tensorflow',
  'jpeg baseline': 'tensorflow',
  'jpeg progressive': 'tensorflow',
  'jpeg gray': 'tensorflow',
  gif: 'tensorflow',
  bmp: 'tensorflow',
  'gif transparent': 'sharp',
  'gif animated': 'sharp',
  webp: 'sharp',
  tiff: 'sharp',
  avif: 'sharp',
  'png 16-bit': 'sharp',
  'jpeg cmyk': 'sharp',
  'jpeg exif-rotated': 'sharp',
  'jpeg icc profile': 'sharp',
};

/**
 * How far TensorFlow's pixels may be from sharp's, in 0-255 steps, over fill, cover and contain, 1 and 3 channels and
 * three target sizes of a 120x90 picture. Measured: PNG, GIF and BMP (bilinear where the image shrinks at most 2x,
 * else sharp's box shrink then lanczos3) at worst mean 1.36 (palette PNG), max 21; JPEG (decoded smaller in the DCT
 * where sharp decodes at full size) mean 2.14, max 27. The bounds leave room for rounding differences between library
 * versions, no more.
 */
const TOLERANCE: Record<'png' | 'jpeg' | 'gif' | 'bmp', { mean: number; max: number }> = {
  png: { mean: 1.5, max: 24 },
  gif: { mean: 1.5, max: 24 },
  bmp: { mean: 1.5, max: 24 },
  jpeg: { mean: 2.5, max: 32 },
};

/** The reference for BMP, which sharp does not read: the same pixels as PNG. */
const REFERENCE: Record<string, string> = { bmp: 'png rgb' };

describe('image decoders', () => {
  let matrix: Record<string, Buffer>;
  before(async () => {
    matrix = await formatMatrix(120, 90);
  });

  it('routes each format by its bytes: JPEG, PNG, GIF and BMP to TensorFlow unless sharp would decode them differently', async () => {
    for (const [name, bytes] of Object.entries(matrix)) {
      const verdict = fastPathVerdict(bytes, 1e9);
      assert.equal(verdict.header ? 'tensorflow' : 'sharp', ROUTES[name], `${name}: ${verdict.header ? 'fast path' : verdict.why}`);
      if (name === 'bmp') continue;
      const { decoder } = await decode(bytes, spec({ width: 28, height: 28 }));
      assert.equal(decoder, ROUTES[name], name);
    }
  });

  it('sends images too large to decode whole to sharp, unless DCT scaling makes a JPEG small enough', async () => {
    const [width, height] = [2400, 2000];
    assert.ok(width * height > FAST_PATH_MAX_PIXELS);
    const png = await pixelBomb(width, height);
    const jpeg = await sharp({ create: { width, height, channels: 3, background: '#468' } }).jpeg().toBuffer();
    const verdict = (bytes: Buffer, target: LimitedSpec) => fastPathVerdict(bytes, 1e9, (header) => decodedPixels(header, target)).header?.format;
    assert.equal(verdict(png, spec({ width: 224, height: 224 })), undefined);
    assert.equal(verdict(jpeg, spec({ width: 224, height: 224 })), 'jpeg');
    assert.equal(verdict(jpeg, spec({ width: 1024, height: 1024, fit: 'cover' })), undefined);
    assert.equal((await decode(jpeg, spec({ width: 224, height: 224 }))).decoder, 'tensorflow');
  });

  it('decodes each fast-path format within the measured tolerance of sharp, in every fit and channel count', async (t) => {
    for (const [name, bytes] of Object.entries(matrix)) {
      if (ROUTES[name] !== 'tensorflow') continue;
      const format = name.split(' ')[0] as keyof typeof TOLERANCE;
      let worstMean = 0;
      let worstMax = 0;
      for (const fit of ['fill', 'cover', 'contain']) {
        for (const channels of [1, 3]) {
          for (const [width, height] of [[28, 28], [64, 24], [120, 90]] as const) {
            const target = spec({ width, height, channels, fit, background: 60 });
            const fast = await decode(bytes, target, 'tensorflow');
            const reference = await decode(matrix[REFERENCE[name] ?? name]!, target, 'sharp');
            assert.equal(fast.pixels.length, width * height * channels);
            assert.equal(reference.pixels.length, fast.pixels.length);
            let sum = 0;
            let max = 0;
            fast.pixels.forEach((v, i) => {
              const difference = Math.abs(v - reference.pixels[i]!);
              sum += difference;
              max = Math.max(max, difference);
            });
            worstMean = Math.max(worstMean, sum / fast.pixels.length);
            worstMax = Math.max(worstMax, max);
          }
        }
      }
      t.diagnostic(`${name}: worst mean |diff| ${worstMean.toFixed(2)}, worst max |diff| ${worstMax}`);
      assert.ok(worstMean <= TOLERANCE[format].mean, `${name}: mean |diff| ${worstMean.toFixed(2)} over ${TOLERANCE[format].mean}`);
      assert.ok(worstMax <= TOLERANCE[format].max, `${name}: max |diff| ${worstMax} over ${TOLERANCE[format].max}`);
    }
  });

  it('leaves the pixels untouched when the decoded size is the target size', async () => {
    const gray = matrix['png gray']!;
    const exact = await sharp(gray).toColourspace('b-w').raw().toBuffer();
    const target = spec({ width: 120, height: 90, channels: 1 });
    for (const only of ['png', 'tensorflow'] as const) assert.deepEqual(Buffer.from((await decode(gray, target, only)).pixels), exact, only);
  });

  it('inflates 8-bit PNGs without transparency already at the target size, to exactly what TensorFlow decodes, in every fit and channel count', async () => {
    for (const name of ['png rgb', 'png gray', 'png palette']) {
      for (const fit of ['fill', 'cover', 'contain']) {
        for (const channels of [1, 3]) {
          const target = spec({ width: 120, height: 90, channels, fit });
          const chosen = await decode(matrix[name]!, target);
          assert.equal(chosen.decoder, 'png', `${name} ${fit} ${channels}`);
          assert.deepEqual(chosen.pixels, (await decode(matrix[name]!, target, 'tensorflow')).pixels, `${name} ${fit} ${channels}`);
        }
      }
      const smaller = await decode(matrix[name]!, spec({ width: 60, height: 45 }));
      assert.equal(smaller.decoder, 'tensorflow', `${name} resized`);
      await assert.rejects(decode(matrix[name]!, spec({ width: 60, height: 45 }), 'png'), DecoderThreadError);
    }
    for (const name of ['png rgba', 'png interlaced']) assert.equal((await decode(matrix[name]!, spec({ width: 120, height: 90 }))).decoder, 'tensorflow', name);
  });

  it('gives bad files the same quarantine reason on both paths', async () => {
    const jpeg = matrix['jpeg baseline']!;
    const files: Record<string, [Buffer, string]> = {
      'truncated JPEG': [jpeg.subarray(0, Math.floor(jpeg.length * 0.7)), 'truncated'],
      'JPEG without its end marker': [jpeg.subarray(0, jpeg.length - 2), 'truncated'],
      'zero-byte file': [Buffer.alloc(0), 'empty'],
      'pixel bomb': [await pixelBomb(100_000, 100_000), 'too_large'],
    };
    for (const [name, [bytes, expected]] of Object.entries(files)) {
      const target = spec({ width: 28, height: 28 });
      const reasons = [];
      for (const only of ['sharp', 'tensorflow', undefined] as const) reasons.push(await reasonOf(decode(bytes, target, only)));
      assert.deepEqual(reasons, [expected, expected, expected], name);
    }
    // A PNG at the target size whose image data does not inflate: the png decoder declines it, and every path ends
    // where sharp alone does.
    const damaged = withDamagedImageData(matrix['png gray']!);
    const atSize = spec({ width: 120, height: 90, channels: 1 });
    for (const only of ['png', 'tensorflow'] as const) await assert.rejects(decode(damaged, atSize, only), DecoderThreadError, only);
    assert.deepEqual([await reasonOf(decode(damaged, atSize)), await reasonOf(decode(damaged, atSize, 'sharp'))], ['corrupt', 'corrupt']);
  });

  it('hands a PNG whose image data fails its CRC to sharp, which decodes it, as before', async () => {
    const png = Buffer.from(matrix['png rgb']!);
    const idat = png.indexOf('IDAT');
    const crcAt = idat + 4 + png.readUInt32BE(idat - 4);
    png[crcAt]! ^= 0xff;
    const target = spec({ width: 28, height: 28, channels: 3 });
    await assert.rejects(decode(png, target, 'tensorflow'), DecoderThreadError);
    const decoded = await decode(png, target);
    assert.equal(decoded.decoder, 'sharp');
    assert.deepEqual(decoded.pixels, (await decode(png, target, 'sharp')).pixels);
    const atSize = spec({ width: 120, height: 90, channels: 3 });
    await assert.rejects(decode(png, atSize, 'png'), DecoderThreadError);
    assert.equal((await decode(png, atSize)).decoder, 'sharp');
  });

  it('keeps decoding many images at once in order, each to its own pixels', async () => {
    const target = spec({ width: 8, height: 8 });
    const shades = Array.from({ length: 40 }, (_, i) => i * 6);
    const files = await Promise.all(shades.map((v) => sharp({ create: { width: 10, height: 10, channels: 3, background: { r: v, g: v, b: v } } }).png().toBuffer()));
    const decoded = await Promise.all(files.map((file) => decode(file, target)));
    decoded.forEach(({ pixels, decoder }, i) => {
      assert.equal(decoder, 'tensorflow');
      assert.ok(pixels.every((v) => v === shades[i]), `image ${i}: ${pixels[0]} for ${shades[i]}`);
    });
  });
});

describe('image decoders without native TensorFlow', () => {
  /** Decodes a PNG and a JPEG in a process of its own, `prelude` run first; prints each decoder and whether its pixels are sharp's. */
  const decodeIn = (env: NodeJS.ProcessEnv, prelude = '', execArgv: string[] = []) => {
    const lib = (path: string) => JSON.stringify(join(__dirname, '..', 'lib', path));
    const script = `${prelude}
      const sharp = require('sharp');
      const { loadSettings } = require(${lib('config.js')});
      const { decode, decodersInUse } = require(${lib('preprocessing/decoders/index.js')});
      const { withinLimits } = require(${lib('preprocessing/limits.js')});
      const { preprocessSpecSchema } = require(${lib('schemas/preprocess.js')});
      const spec = withinLimits(preprocessSpecSchema.parse({ width: 16, height: 16, channels: 3 }), 1, loadSettings().limits);
      (async () => {
        // Asked first, as a batch's cache key is, before anything is decoded.
        const inUse = await decodersInUse();
        const picture = sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 90, b: 30 }, noise: { type: 'gaussian', mean: 90, sigma: 30 } } });
        const files = [await picture.clone().png().toBuffer(), await picture.clone().jpeg().toBuffer(), await picture.clone().png().toBuffer()];
        const results = [];
        for (const file of files) {
          const [chosen, bySharp] = await Promise.all([decode(file, spec), decode(file, spec, 'sharp')]);
          results.push({ decoder: chosen.decoder, sameAsSharp: Buffer.compare(Buffer.from(chosen.pixels), Buffer.from(bySharp.pixels)) === 0 });
        }
        console.log(JSON.stringify({ inUse, results }));
      })();
    `;
    const run = spawnSync(process.execPath, [...execArgv, '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const { inUse, results } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { inUse: string; results: { decoder: Decoder; sameAsSharp: boolean }[] };
    return { inUse, results, stderr: run.stderr };
  };
  const allSharp = [1, 2, 3].map(() => ({ decoder: 'sharp', sameAsSharp: true }));

  it('decodes every image with sharp, saying so once, when TFJS_BACKEND=cpu', () => {
    const { inUse, results, stderr } = decodeIn({ TFJS_BACKEND: 'cpu' });
    assert.equal(inUse, 'sharp');
    assert.deepEqual(results, allSharp);
    assert.equal(stderr.match(/images are decoded with sharp only: TFJS_BACKEND=cpu/g)?.length, 1, stderr);
  });

  it('does not decide tfjs-node is missing when the first batch runs out of file descriptors', () => {
    const lib = (path: string) => JSON.stringify(join(__dirname, '..', 'lib', path));
    const script = `
      const { closeSync, openSync } = require('node:fs');
      require(${lib('config.js')}).settings();
      const { fastPathAvailable } = require(${lib('preprocessing/decoders/index.js')});
      const taken = [];
      try {
        for (;;) taken.push(openSync('/dev/null', 'r'));
      } catch (err) {
        if (err.code !== 'EMFILE') throw err;
      }
      let first;
      try {
        first = fastPathAvailable();
      } catch (err) {
        first = err.code;
      }
      taken.forEach((fd) => closeSync(fd));
      console.log(JSON.stringify({ first, then: fastPathAvailable() }));
    `;
    const run = spawnSync('bash', ['-c', 'ulimit -n 128 && exec "$@"', 'bash', process.execPath, '-e', script], { env: { ...process.env, TFJS_BACKEND: 'auto' }, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout.trim()), { first: true, then: true });
    assert.doesNotMatch(run.stderr, /decoded with sharp only/);
  });

  it('decodes every image with sharp, saying so once, when tfjs-node is not installed', () => {
    const notInstalled = `
      const Module = require('module');
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request === '@tensorflow/tfjs-node') throw Object.assign(new Error("Cannot find module '@tensorflow/tfjs-node'"), { code: 'MODULE_NOT_FOUND' });
        return resolve.call(this, request, ...rest);
      };
    `;
    const { inUse, results, stderr } = decodeIn({ TFJS_BACKEND: 'auto' }, notInstalled);
    assert.equal(inUse, 'sharp');
    assert.deepEqual(results, allSharp);
    assert.equal(stderr.match(/images are decoded with sharp only: @tensorflow\/tfjs-node is not installed/g)?.length, 1, stderr);
  });

  it('decodes every image with sharp, and says it uses sharp only, when tfjs-node is installed but does not load in the decoder threads', (t) => {
    const hook = join(mkdtempSync(join(tmpdir(), 'threads-without-tensorflow-')), 'hook.js');
    writeFileSync(
      hook,
      `if (!require('node:worker_threads').isMainThread) {
        const Module = require('module');
        const load = Module._load;
        Module._load = function (request, ...rest) {
          // Where libtensorflow is missing, loading the binding fails, alone or through tfjs-node.
          if (request === '@tensorflow/tfjs-node' || request.endsWith('tfjs_binding.node')) throw new Error('libtensorflow.so.2: cannot open shared object file');
          return load.call(this, request, ...rest);
        };
      }`,
    );
    t.after(() => rmSync(dirname(hook), { recursive: true, force: true }));
    const { inUse, results, stderr } = decodeIn({ TFJS_BACKEND: 'auto' }, '', ['--require', hook]);
    assert.equal(inUse, 'sharp');
    assert.deepEqual(results, allSharp);
    assert.equal(stderr.match(/native TensorFlow does not load in the decoder threads \(libtensorflow.so.2: cannot open shared object file\)/g)?.length, 1, stderr);
  });

  it('decodes with TensorFlow where it loads, in the same script', () => {
    const { inUse, results } = decodeIn({ TFJS_BACKEND: 'auto' });
    assert.equal(inUse, 'tensorflow+sharp');
    assert.deepEqual(results.map(({ decoder }) => decoder), ['tensorflow', 'tensorflow', 'tensorflow']);
  });
});

async function reasonOf(decoding: Promise<unknown>): Promise<string | undefined> {
  try {
    await decoding;
    return 'decoded';
  } catch (err) {
    return quarantineReasonOf(err) ?? `not a quarantine: ${(err as Error).message}`;
  }
}
