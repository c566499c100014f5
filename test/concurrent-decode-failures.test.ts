import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { loadSettings } from '../lib/config';
import { decode } from '../lib/preprocessing/decoders';
import { withinLimits } from '../lib/preprocessing/limits';
import { failureDecodedAlone, mayBeAnotherFailure, quarantineReasonOf } from '../lib/preprocessing/quarantine';
import { toPixels } from '../lib/preprocessing/transform';
import { seededRandom, shuffleInPlace } from '../lib/random';
import { withSharp, withSharpAlone } from '../lib/sharp-gate';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';
import { pixelBomb } from './helpers/messy-dataset';

const spec = withinLimits(preprocessSpecSchema.parse({ width: 16, height: 16, channels: 3 }), 1, loadSettings().limits);

/** Times every file is decoded among all the others, in a different order each time. */
const ROUNDS = 4;

interface BadFile {
  kind: string;
  bytes: Buffer;
  /** The reason it is quarantined under when decoded on its own. */
  reason: string;
}

/** Noisy pictures (the same on every run) that go to TensorFlow (JPEG, PNG) and to sharp (WebP, TIFF), and damaged copies of the JPEGs and PNGs. */
async function files(count: number): Promise<{ good: Buffer[]; bad: BadFile[] }> {
  const good: Buffer[] = [];
  const bad: BadFile[] = [];
  for (let i = 0; i < count; i++) {
    const random = seededRandom(i);
    const [width, height] = [40 + i, 30];
    const picture = sharp(Uint8Array.from({ length: width * height * 3 }, () => Math.floor(random() * 256)), { raw: { width, height, channels: 3 } });
    const [jpeg, png, webp, tiff] = await Promise.all((['jpeg', 'png', 'webp', 'tiff'] as const).map((format) => picture.clone().toFormat(format).toBuffer()));
    good.push(jpeg!, png!, webp!, tiff!);
    const zeroedWidth = Buffer.from(png!);
    zeroedWidth.fill(0, 16, 20);
    const garbage = Buffer.from(Array.from({ length: 400 + i }, (_, k) => (k * 7919 + i) & 0xff));
    bad.push(
      { kind: 'truncated JPEG', bytes: jpeg!.subarray(0, Math.floor(jpeg!.length * 0.6)), reason: 'truncated' },
      { kind: 'JPEG cut before its end marker', bytes: jpeg!.subarray(0, jpeg!.length - 2), reason: 'truncated' },
      { kind: 'JPEG cut inside its header', bytes: jpeg!.subarray(0, 100), reason: 'truncated' },
      { kind: 'truncated PNG', bytes: png!.subarray(0, Math.floor(png!.length * 0.6)), reason: 'truncated' },
      { kind: 'PNG of zero width', bytes: zeroedWidth, reason: 'corrupt' },
      { kind: 'garbage bytes', bytes: garbage, reason: 'not_an_image' },
    );
  }
  return { good, bad };
}

/** The reason a decode is quarantined under, or how it failed otherwise; `pixels` when it decodes. */
async function outcomeOf(decoding: Promise<Uint8Array>): Promise<string | Uint8Array> {
  try {
    return await decoding;
  } catch (err) {
    return quarantineReasonOf(err) ?? `not a quarantine: ${(err as Error).message}`;
  }
}

const entryPoints: Record<string, (bytes: Buffer) => Promise<Uint8Array>> = {
  'decode()': async (bytes) => (await decode(bytes, spec)).pixels,
  toPixels: (bytes) => toPixels(bytes, spec),
};

describe('bad images decoded among many others', () => {
  for (const [name, decodeFile] of Object.entries(entryPoints)) {
    it(`${name} gives each bad file the reason it gets alone, and decodes every good one`, async () => {
      const { good, bad } = await files(4);
      const alone: (string | Uint8Array)[] = [];
      for (const file of [...good, ...bad.map(({ bytes }) => bytes)]) alone.push(await outcomeOf(decodeFile(file)));
      assert.deepEqual(alone.slice(good.length), bad.map(({ reason }) => reason), 'the reasons of bad files decoded one at a time');
      const random = seededRandom(5);
      const wrong: string[] = [];
      let decoded = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const order = shuffleInPlace(Int32Array.from(alone, (_, i) => i), random);
        const outcomes = await Promise.all(Array.from(order, (i) => outcomeOf(decodeFile(i < good.length ? good[i]! : bad[i - good.length]!.bytes))));
        outcomes.forEach((outcome, position) => {
          const i = order[position]!;
          if (i < good.length) {
            if (outcome instanceof Uint8Array && Buffer.from(outcome).equals(alone[i] as Uint8Array)) decoded++;
            else wrong.push(`good image ${i}: ${outcome instanceof Uint8Array ? 'other pixels' : outcome}`);
          } else if (outcome !== alone[i]) {
            wrong.push(`${bad[i - good.length]!.kind}: ${outcome instanceof Uint8Array ? 'decoded' : outcome}, alone ${String(alone[i])}`);
          }
        });
      }
      assert.equal(wrong.length, 0, `${wrong.length} of ${ROUNDS * alone.length} decodes among others differ from alone:\n${wrong.slice(0, 8).join('\n')}`);
      assert.equal(decoded, ROUNDS * good.length);
    });
  }

  it('takes a file sharp cannot decode even alone, and gives no reason for, as corrupt, keeping what sharp said', () => {
    for (const message of ['Unknown error', '']) {
      const err = failureDecodedAlone(new Error(message)) as Error;
      assert.equal(quarantineReasonOf(err), 'corrupt');
      assert.equal(err.message, `sharp cannot decode it and gives no reason ("${message}")`);
    }
    const truncated = new Error('VipsJpeg: premature end of JPEG image');
    assert.equal(failureDecodedAlone(truncated), truncated);
  });

  it("decodes again only failures whose message is libvips', not sharp's own words about the bytes", async () => {
    const failure = (bytes: Buffer) => toPixels(bytes, spec).then(() => assert.fail('decoded'), (err: unknown) => err);
    const jpeg = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#468' } }).jpeg().toBuffer();
    for (const ownWords of [Buffer.from('<html>not an image</html>'), Buffer.alloc(0), await pixelBomb(100_000, 100_000)]) {
      assert.equal(mayBeAnotherFailure(await failure(ownWords)), false);
    }
    assert.equal(mayBeAnotherFailure(await failure(jpeg.subarray(0, jpeg.length / 2))), true);
  });

  it('runs an operation alone after every sharp operation in flight, and before those that start later', async () => {
    const log: string[] = [];
    const operation = (name: string) => async () => {
      log.push(`${name} starts`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      log.push(`${name} ends`);
    };
    const earlier = [withSharp(operation('a')), withSharp(operation('b'))];
    const alone = [withSharpAlone(operation('alone 1')), withSharpAlone(operation('alone 2'))];
    await Promise.all([...earlier, ...alone, withSharp(operation('c'))]);
    assert.deepEqual(log.slice(4), ['alone 1 starts', 'alone 1 ends', 'alone 2 starts', 'alone 2 ends', 'c starts', 'c ends']);
    assert.deepEqual(log.slice(0, 4).sort(), ['a ends', 'a starts', 'b ends', 'b starts']);
  });
});
