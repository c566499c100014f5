import { join } from 'node:path';
import { settings } from '../../config';
import { ThreadPool } from '../../thread-pool';
import type { LimitedSpec } from '../limits';
import { QuarantineError } from '../quarantine';
import { toPixels, type ImageInput } from '../transform';
import { SharedReadWriteLock } from './attribute-names';
import type { DecodeRequest, DecodeResponse, DecoderThreadData, ThreadDecoder } from './decoder-thread';
import { fastPathVerdict, type ImageHeader } from './header';
import type { DecodeTarget } from './target';
import { decodedPixels } from './tensorflow';

/** TensorFlow's decoders, PNG inflation for PNGs already at the target size (both on the decoder threads), or sharp. */
export type Decoder = ThreadDecoder | 'sharp';

export interface Decoded {
  /** height x width x channels bytes. */
  pixels: Uint8Array;
  decoder: Decoder;
}

/** The decoder threads could not decode a file the header let through; `decode` then hands the file to sharp. */
export class DecoderThreadError extends Error {
  override name = 'DecoderThreadError';
}

/** Native TensorFlow does not load on this worker. */
class FastPathUnavailable extends Error {}

/**
 * Decodes an image to the spec's shape. Which decoder runs depends only on the file's bytes and the target size:
 * JPEG, PNG, GIF and BMP files whose header shows nothing TensorFlow would decode differently from sharp, and not too
 * large to decode whole, go to the decoder threads (simple PNGs already at the target size are inflated there, the
 * rest decoded by TensorFlow); everything else, and anything the threads fail on, to sharp, so quarantine reasons all
 * come from sharp. Raw pixels (IDX records) go to sharp. `only` forces one decoder, without falling back. `into`, shared
 * memory of the pixels' size, is where the decoder threads write them (then `pixels` is `into`); it may be written to
 * even where another decoder's pixels come back.
 */
export async function decode(input: ImageInput, spec: LimitedSpec, only?: Decoder, into?: Uint8Array): Promise<Decoded> {
  if (!Buffer.isBuffer(input) || only === 'sharp') return { pixels: await toPixels(input, spec), decoder: 'sharp' };
  const verdict = fastPathVerdict(input, spec.maxInputPixels, (header) => decodedPixels(header, spec));
  if (only) {
    if (verdict.header) return fastPath().decode(input, verdict.header, spec, only, into);
    if (verdict.reason) throw new QuarantineError(verdict.reason, verdict.why);
    throw new DecoderThreadError(`not for the decoder threads: ${verdict.why}`);
  }
  if (verdict.header && fastPathAvailable()) {
    try {
      return await fastPath().decode(input, verdict.header, spec, undefined, into);
    } catch (err) {
      if (!(err instanceof DecoderThreadError || err instanceof FastPathUnavailable)) throw err;
    }
  }
  return { pixels: await toPixels(input, spec), decoder: 'sharp' };
}

/** Images per message to a decoder thread, at most: enough to amortize messaging, few enough to spread over threads. */
const MAX_PER_MESSAGE = 16;

interface Queued {
  bytes: Uint8Array;
  header: ImageHeader;
  into: Uint8Array | undefined;
  resolve: (decoded: Decoded) => void;
  reject: (err: Error) => void;
}

/** Decoder threads, fed images collected over one turn of the event loop, several per message. */
class FastPath {
  private readonly pool: ThreadPool<DecodeRequest, DecodeResponse>;
  private queues = new Map<string, { target: DecodeTarget; only: ThreadDecoder | undefined; images: Queued[] }>();
  private flushing = false;
  private probed: Promise<void> | undefined;
  unavailable: string | undefined;

  constructor(private readonly threads: number) {
    this.pool = new ThreadPool(join(__dirname, 'decoder-thread.js'), threads, 'decoder', { attributeNames: SharedReadWriteLock.memory() } satisfies DecoderThreadData);
  }

  /** `only`: that decoder of the threads, without falling back to the other; `into`: see `decode`. */
  decode(bytes: Uint8Array, header: ImageHeader, spec: DecodeTarget, only?: ThreadDecoder, into?: Uint8Array): Promise<Decoded> {
    if (this.unavailable) return Promise.reject(new FastPathUnavailable(this.unavailable));
    const target: DecodeTarget = { width: spec.width, height: spec.height, channels: spec.channels, fit: spec.fit, background: spec.background };
    const key = `${only} ${JSON.stringify(target)}`;
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = { target, only, images: [] }));
    return new Promise((resolve, reject) => {
      const shared = into?.buffer instanceof SharedArrayBuffer && into.byteLength === target.width * target.height * target.channels;
      queue.images.push({ bytes, header, into: shared ? into : undefined, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Asks a decoder thread, once, whether native TensorFlow loads there (an empty request). */
  probe(): Promise<void> {
    const target: DecodeTarget = { width: 1, height: 1, channels: 1, fit: 'fill', background: 0 };
    this.probed ??= this.pool.request({ target, images: [], into: [] }).then(
      ({ unavailable }) => {
        if (unavailable) this.markUnavailable(unavailable);
      },
      (err: unknown) => {
        this.probed = undefined;
        throw err;
      },
    );
    return this.probed;
  }

  private markUnavailable(why: string): void {
    if (this.unavailable) return;
    this.unavailable = why;
    console.warn(`[temporal-ml] native TensorFlow does not load in the decoder threads (${why}); images are decoded with sharp.`);
  }

  private flush(): void {
    this.flushing = false;
    for (const { target, only, images } of this.queues.values()) {
      const perMessage = Math.min(MAX_PER_MESSAGE, Math.ceil(images.length / this.threads));
      for (let i = 0; i < images.length; i += perMessage) this.send(target, only, images.slice(i, i + perMessage));
    }
    this.queues.clear();
  }

  /**
   * Bytes in shared memory (as the reader threads return them) go as they are; the others are copied into one buffer,
   * which is moved, not copied, to the thread. The pixels are written into the images' shared memory where they have
   * it, else come back in one buffer.
   */
  private send(target: DecodeTarget, only: ThreadDecoder | undefined, images: Queued[]): void {
    const unshared = images.filter(({ bytes }) => !(bytes.buffer instanceof SharedArrayBuffer));
    const copies = new Uint8Array(unshared.reduce((sum, image) => sum + image.bytes.length, 0));
    let offset = 0;
    const entries = images.map(({ bytes, header }) => {
      if (bytes.buffer instanceof SharedArrayBuffer) return { header, bytes };
      copies.set(bytes, offset);
      offset += bytes.length;
      return { header, bytes: copies.subarray(offset - bytes.length, offset) };
    });
    const size = target.width * target.height * target.channels;
    const into = images.map((image) => image.into ?? null);
    this.pool.request({ target, ...(only ? { only } : {}), images: entries, into }, copies.length > 0 ? [copies.buffer] : []).then(
      ({ unavailable, errors, decoders, pixels }) => {
        if (unavailable) this.markUnavailable(unavailable);
        images.forEach((image, i) => {
          if (unavailable) image.reject(new FastPathUnavailable(unavailable));
          else if (errors[i] !== null) image.reject(new DecoderThreadError(errors[i]!));
          else image.resolve({ pixels: image.into ?? pixels.subarray(i * size, (i + 1) * size), decoder: decoders[i]! });
        });
      },
      (err: Error) => images.forEach((image) => image.reject(err)),
    );
  }
}

let shared: FastPath | undefined;
const fastPath = () => (shared ??= new FastPath(settings().decoderThreads));

let available: boolean | undefined;

/**
 * Looked up when this module loads, with the worker: a lookup during a batch that runs out of file descriptors reads
 * as "not installed" (Node's resolver reports any failure as a missing module), and would switch the worker to sharp.
 */
const TFJS_NODE_MISSING = tfjsNodeMissing();

/** Whether this worker decodes with TensorFlow at all: not with TFJS_BACKEND=cpu, nor without tfjs-node installed. */
export function fastPathAvailable(): boolean {
  if (available === undefined) {
    const why = settings().tfjsBackend === 'cpu' ? 'TFJS_BACKEND=cpu' : TFJS_NODE_MISSING;
    available = why === undefined;
    if (why) console.warn(`[temporal-ml] images are decoded with sharp only: ${why}.`);
  }
  return available && !shared?.unavailable;
}

/**
 * Which decoders this worker uses, for cache keys (the two paths' pixels differ within the documented tolerance):
 * TensorFlow's only where native TensorFlow actually loads in the decoder threads, which the first call asks them.
 */
export async function decodersInUse(): Promise<'tensorflow+sharp' | 'sharp'> {
  if (fastPathAvailable()) await fastPath().probe();
  return fastPathAvailable() ? 'tensorflow+sharp' : 'sharp';
}

function tfjsNodeMissing(): string | undefined {
  try {
    require.resolve('@tensorflow/tfjs-node');
    return undefined;
  } catch {
    return '@tensorflow/tfjs-node is not installed';
  }
}
