/**
 * Images per second of `decode()` (on the decoder threads: PNG inflation where the image is at the target size, else
 * TensorFlow), of TensorFlow's decoders alone, and of sharp alone (`toPixels`), for the two shapes Keras'
 * `image_dataset_from_directory` is compared on: 28x28 PNG -> 28x28x1 and 640x480 JPEG -> 224x224x3.
 *   node dist/bench/decoders.js [images per case]
 */
import sharp from 'sharp';
import { loadSettings } from '../lib/config';
import { mapWithConcurrency } from '../lib/concurrency';
import { decode } from '../lib/preprocessing/decoders';
import { withinLimits } from '../lib/preprocessing/limits';
import { toPixels } from '../lib/preprocessing/transform';
import { preprocessSpecSchema } from '../lib/schemas/preprocess';
import { oneThreadPerOp } from '../lib/tf';

const count = Number(process.argv[2] ?? 400);

async function images(width: number, height: number, format: 'png' | 'jpeg'): Promise<Buffer[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      sharp({ create: { width, height, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 64 + (i % 128), sigma: 40 } } })
        .blur(1 + (i % 3))
        .toFormat(format)
        .toBuffer(),
    ),
  );
}

/** Images per second, and CPU milliseconds per image over every thread of the process (steadier on a busy machine). */
async function rate(files: Buffer[], concurrency: number, one: (file: Buffer) => Promise<unknown>): Promise<string> {
  await mapWithConcurrency(files.slice(0, 32), concurrency, one);
  const started = performance.now();
  const cpu = process.cpuUsage();
  await mapWithConcurrency(files, concurrency, one);
  const { user, system } = process.cpuUsage(cpu);
  const perSecond = files.length / ((performance.now() - started) / 1000);
  return `${perSecond.toFixed(0)} img/s, ${((user + system) / 1000 / files.length).toFixed(2)} CPU ms/img`;
}

async function main(): Promise<void> {
  // As in a preprocessing worker, before TensorFlow loads.
  oneThreadPerOp();
  const cases = [
    { name: '28x28 PNG -> 28x28x1', files: await images(28, 28, 'png'), spec: { width: 28, height: 28, channels: 1 } },
    { name: '640x480 JPEG -> 224x224x3', files: await images(640, 480, 'jpeg'), spec: { width: 224, height: 224, channels: 3 } },
  ];
  for (const { name, files, spec } of cases) {
    const limited = withinLimits(preprocessSpecSchema.parse(spec), 1, loadSettings().limits);
    const sharpRate = await rate(files, 8, (file) => toPixels(file, limited));
    const tensorflowRate = await rate(files, 32, (file) => decode(file, limited, 'tensorflow'));
    const chosen = (await decode(files[0]!, limited)).decoder;
    const chosenRate = await rate(files, 32, (file) => decode(file, limited));
    console.log(`${name}: decode() (${chosen}) ${chosenRate}; TensorFlow ${tensorflowRate}; sharp ${sharpRate} (${count} images)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
