/**
 * A worker thread that decodes images with native TensorFlow, so decoding runs beside the event loop, not on it; PNGs
 * that need no resizing are inflated here without TensorFlow (see png.ts). Each request carries several images end to
 * end in one buffer and gets their pixels back the same way.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadNative, type TensorFlow } from '../../tf';
import type { ImageHeader } from './header';
import { guardAttributeNames, guardedBinding } from './attribute-names';
import { NativeImageOps, type NativeBinding } from './native-image-ops';
import { decodeSimplePng } from './png';
import { placement, writeTarget, type DecodeTarget } from './target';
import { decodeWithTensorflow, type TensorflowRuntime } from './tensorflow';

/** What every decoder thread of a process starts with. */
export interface DecoderThreadData {
  /** The lock of `guardedBinding`, one for the process. */
  attributeNames: SharedArrayBuffer;
}

export interface DecodeRequest {
  id: number;
  target: DecodeTarget;
  /** That decoder only, without falling back to the other. */
  only?: ThreadDecoder;
  /** Each image's encoded bytes: shared memory, or a view of one buffer moved here with the request. */
  images: { header: ImageHeader; bytes: Uint8Array }[];
  /** Per image: shared memory to write its pixels into, or null to send them back in `pixels`. */
  into: (Uint8Array | null)[];
}

/** The decoders of this thread: TensorFlow's, and PNG inflation for images already at the target size. */
export type ThreadDecoder = 'tensorflow' | 'png';

export interface DecodeResponse {
  id: number;
  /** Set when native TensorFlow does not load in this thread: nothing was decoded. */
  unavailable?: string;
  /** Per image: null when decoded, else TensorFlow's message about the file. */
  errors: (string | null)[];
  /** Per image decoded: which decoder it took. */
  decoders: ThreadDecoder[];
  /** Image i's pixels at i * width * height * channels, unless written into its shared memory. */
  pixels: Uint8Array;
}

let binding: NativeBinding | undefined;
let unavailable: string | undefined;
try {
  binding = NativeImageOps.loadBinding();
} catch (err) {
  unavailable = (err as Error).message.split('\n')[0];
}

const { attributeNames } = workerData as DecoderThreadData;
let tfjs: TensorFlow | undefined;
// TensorFlow.js stays out of this thread's heap until an image needs it (see TensorflowRuntime).
// Outside the try: a wiring fault here must fail loudly, not pass for TensorFlow missing.
const tf: TensorflowRuntime | undefined = binding && {
  binding: guardedBinding(binding, attributeNames),
  tfjs() {
    if (!tfjs) {
      let loaded: TensorFlow;
      try {
        loaded = loadNative();
      } catch (err) {
        // As if TensorFlow had not loaded at all: the worker says so and decodes everything with sharp from then on.
        unavailable = (err as Error).message.split('\n')[0];
        throw err;
      }
      guardAttributeNames(loaded, attributeNames);
      tfjs = loaded;
    }
    return tfjs;
  },
};

parentPort?.on('message', ({ id, target, only, images, into }: DecodeRequest) => {
  const size = target.width * target.height * target.channels;
  const pixels = new Uint8Array(tf && into.some((memory) => memory === null) ? images.length * size : 0);
  const decoders: ThreadDecoder[] = [];
  const errors = images.map(({ header, bytes }, i) => {
    if (!tf || unavailable) return unavailable!;
    try {
      decoders[i] = decodeOne(tf, bytes, header, target, into[i] ?? pixels.subarray(i * size, (i + 1) * size), only);
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  });
  parentPort!.postMessage({ id, errors, decoders, pixels, ...(unavailable ? { unavailable } : {}) } satisfies DecodeResponse, [pixels.buffer]);
});

/** A PNG the target's size inflates here, losslessly, as TensorFlow would decode it; everything else goes to TensorFlow. */
function decodeOne(tf: TensorflowRuntime, bytes: Uint8Array, header: ImageHeader, target: DecodeTarget, out: Uint8Array, only?: ThreadDecoder): ThreadDecoder {
  const place = placement(header.width, header.height, target);
  if (only !== 'tensorflow' && header.format === 'png' && place.resizeWidth === header.width && place.resizeHeight === header.height) {
    const png = decodeSimplePng(bytes);
    if (png) {
      writeTarget(png.data, png.width, png.height, png.channels, place, target, out);
      return 'png';
    }
  }
  if (only === 'png') throw new Error('not a valid 8-bit PNG without transparency at the target size');
  decodeWithTensorflow(tf, bytes, header, target, out);
  return 'tensorflow';
}
