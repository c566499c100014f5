/**
 * The bare sharp loop of `bench:preprocess`: the same per-image operations the workflow's activities run (the same
 * functions), with nothing around them. It runs in a process of its own, so that its heap and libvips' caches are not
 * the workflow's, whose worker runs in the benchmark's process:
 *   node dist/bench/bare-loop.js <JSON file of { files, spec, concurrency, decoders, startAt }>
 * prints `{ seconds, cpuSeconds, peakRss }` as one JSON line. With `decoders: "workflow"` it decodes as the workflow
 * does (decoder threads where the bytes allow, else sharp), which `bench:preprocess` runs pinned to cores to measure
 * how much faster two busy cores are than one.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mapWithConcurrency } from '../lib/concurrency';
import { decode } from '../lib/preprocessing/decoders';
import type { LimitedSpec } from '../lib/preprocessing/limits';
import { normalizeInto } from '../lib/preprocessing/normalize';
import { toPixels } from '../lib/preprocessing/transform';
import { measured } from './measured';

export interface BareLoopOptions {
  /** sharp's pipeline (the default), or the workflow's choice of decoder per file. */
  decoders?: 'sharp' | 'workflow';
  /** The core to pin the process to (`taskset -c`), with one decoder thread and one libvips thread, as a worker of one core. */
  core?: string;
  /** When to start timing (epoch milliseconds), after a warm-up: processes started together then run together. */
  startAt?: number;
}

interface BareLoopInput extends Omit<BareLoopOptions, 'core'> {
  files: string[];
  spec: LimitedSpec;
  concurrency: number;
}

export interface BareLoopRun {
  seconds: number;
  cpuSeconds: number;
  peakRss: number;
}

function bareLoop({ files, spec, concurrency, decoders = 'sharp' }: BareLoopInput): Promise<void[]> {
  const size = spec.width * spec.height * spec.channels;
  return mapWithConcurrency(files, concurrency, async (file) => {
    const bytes = await readFile(file);
    const pixels = decoders === 'sharp' ? await toPixels(bytes, spec) : (await decode(bytes, spec)).pixels;
    if (spec.storage === 'float32') normalizeInto(pixels, spec, new Float32Array(size), 0);
  });
}

async function timedFrom(input: BareLoopInput): Promise<Awaited<ReturnType<typeof measured>>> {
  if (input.startAt !== undefined) {
    await bareLoop({ ...input, files: input.files.slice(0, 100) });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, input.startAt! - Date.now())));
  }
  return measured(() => bareLoop(input));
}

/** Runs the loop over `files` in a new process (its input written to `scratch`); what it measured there. */
export async function bareLoopInChild(files: string[], spec: LimitedSpec, concurrency: number, scratch: string, { core, ...options }: BareLoopOptions = {}): Promise<BareLoopRun> {
  const input = join(scratch, `bare-loop-input-${core ?? 'any'}.json`);
  await writeFile(input, JSON.stringify({ files, spec, concurrency, ...options } satisfies BareLoopInput));
  const node = [process.execPath, __filename, input];
  const [command, ...args] = core === undefined ? node : ['taskset', '-c', core, ...node];
  const env = core === undefined ? process.env : { ...process.env, TEMPORAL_ML_DECODER_THREADS: '1', VIPS_CONCURRENCY: '1' };
  const { stdout } = await promisify(execFile)(command!, args, { maxBuffer: 1024 * 1024, env });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as BareLoopRun;
}

if (require.main === module) {
  readFile(process.argv[2]!, 'utf8')
    .then((text) => timedFrom(JSON.parse(text) as BareLoopInput))
    .then(({ seconds, cpuSeconds, peakRss }) => console.log(JSON.stringify({ seconds, cpuSeconds, peakRss } satisfies BareLoopRun)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
