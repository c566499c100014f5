/**
 * The bare sharp loop of `bench:preprocess`: the same per-image operations the workflow's activities run (the same
 * functions), with nothing around them. It runs in a process of its own, so that its heap and libvips' caches are not
 * the workflow's, whose worker runs in the benchmark's process:
 *   node dist/bench/bare-loop.js <JSON file of { files, spec, concurrency }>
 * prints `{ seconds, cpuSeconds, peakRss }` as one JSON line.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mapWithConcurrency } from '../lib/concurrency';
import type { LimitedSpec } from '../lib/preprocessing/limits';
import { normalizeInto } from '../lib/preprocessing/normalize';
import { toPixels } from '../lib/preprocessing/transform';
import { measured } from './measured';

interface BareLoopInput {
  files: string[];
  spec: LimitedSpec;
  concurrency: number;
}

export interface BareLoopRun {
  seconds: number;
  cpuSeconds: number;
  peakRss: number;
}

async function bareLoop({ files, spec, concurrency }: BareLoopInput): Promise<void> {
  const size = spec.width * spec.height * spec.channels;
  await mapWithConcurrency(files, concurrency, async (file) => {
    const pixels = await toPixels(await readFile(file), spec);
    if (spec.storage === 'float32') normalizeInto(pixels, spec, new Float32Array(size), 0);
  });
}

/** Runs the loop over `files` in a new process (its input written to `scratch`); what it measured there. */
export async function bareLoopInChild(files: string[], spec: LimitedSpec, concurrency: number, scratch: string): Promise<BareLoopRun> {
  const input = join(scratch, 'bare-loop-input.json');
  await writeFile(input, JSON.stringify({ files, spec, concurrency } satisfies BareLoopInput));
  const { stdout } = await promisify(execFile)(process.execPath, [__filename, input], { maxBuffer: 1024 * 1024 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as BareLoopRun;
}

if (require.main === module) {
  readFile(process.argv[2]!, 'utf8')
    .then((text) => measured(() => bareLoop(JSON.parse(text) as BareLoopInput)))
    .then(({ seconds, cpuSeconds, peakRss }) => console.log(JSON.stringify({ seconds, cpuSeconds, peakRss } satisfies BareLoopRun)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
