/**
 * A worker thread that decodes images with native TensorFlow, so decoding runs beside the event loop, not on it.
 * Each request carries several images end to end in one buffer and gets their pixels back the same way.
 */
import { parentPort } from 'node:worker_threads';
import { loadNative } from '../../tf';
import type { ImageHeader } from './header';
import { decodeWithTensorflow, type DecodeTarget, type TensorFlowNode } from './tensorflow';

export interface DecodeRequest {
  id: number;
  target: DecodeTarget;
  images: { header: ImageHeader; offset: number; length: number }[];
  /** The images' encoded bytes, end to end. */
  data: Uint8Array;
}

export interface DecodeResponse {
  id: number;
  /** Set when native TensorFlow does not load in this thread: nothing was decoded. */
  unavailable?: string;
  /** Per image: null when decoded, else TensorFlow's message about the file. */
  errors: (string | null)[];
  /** Image i's pixels at i * width * height * channels. */
  pixels: Uint8Array;
}

let tf: TensorFlowNode | undefined;
let unavailable: string | undefined;
try {
  tf = loadNative() as TensorFlowNode;
} catch (err) {
  unavailable = (err as Error).message.split('\n')[0];
}

parentPort?.on('message', ({ id, target, images, data }: DecodeRequest) => {
  const size = target.width * target.height * target.channels;
  const pixels = new Uint8Array(tf ? images.length * size : 0);
  const errors = images.map(({ header, offset, length }, i) => {
    if (!tf) return unavailable!;
    try {
      decodeWithTensorflow(tf, data.subarray(offset, offset + length), header, target, pixels.subarray(i * size, (i + 1) * size));
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  });
  parentPort!.postMessage({ id, errors, pixels, ...(unavailable ? { unavailable } : {}) } satisfies DecodeResponse, [pixels.buffer]);
});
