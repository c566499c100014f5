import type * as tfjs from '@tensorflow/tfjs';
import type { TensorFlow } from '../../tf';
import { BilinearResizer } from './bilinear';
import type { ImageHeader } from './header';
import { NativeImageOps, type NativeBinding } from './native-image-ops';
import { placement, writeTarget, type DecodeTarget, type Placement } from './target';

/**
 * The largest JPEG DCT scaling (1/2, 1/4, 1/8) that still decodes at least the resized size: libjpeg then skips most
 * of the inverse DCT work, as libvips' shrink-on-load does.
 */
export function jpegRatio(header: ImageHeader, { resizeWidth, resizeHeight }: Placement): 1 | 2 | 4 | 8 {
  for (const ratio of [8, 4, 2] as const) {
    if (Math.ceil(header.width / ratio) >= resizeWidth && Math.ceil(header.height / ratio) >= resizeHeight) return ratio;
  }
  return 1;
}

/** Pixels TensorFlow decodes an image to, before resizing. */
export function decodedPixels(header: ImageHeader, target: DecodeTarget): number {
  const ratio = header.format === 'jpeg' ? jpegRatio(header, placement(header.width, header.height, target)) : 1;
  return Math.ceil(header.width / ratio) * Math.ceil(header.height / ratio);
}

/** What decoding with TensorFlow runs on. */
export interface TensorflowRuntime {
  /** Native TensorFlow's eager ops, which every image takes. */
  binding: NativeBinding;
  /** TensorFlow.js on the same binding, for flattening alpha and larger shrinks: loaded by the first image that needs it. */
  tfjs(): TensorFlow;
}

/**
 * Decodes an image with TensorFlow's own decoders and writes it, `target`-shaped, into `out` (height x width x channels
 * bytes): alpha flattened onto the background, resized as libvips resizes, cropped or letterboxed, grayscale as sharp
 * computes it. Throws on a file TensorFlow cannot decode. The common case (no alpha; no resize, or a bilinear one)
 * stays in uint8 from decoding to `out`, resized by `BilinearResizer`; flattening and larger shrinks go through tfjs.
 */
export function decodeWithTensorflow(runtime: TensorflowRuntime, bytes: Uint8Array, header: ImageHeader, target: DecodeTarget, out: Uint8Array): void {
  const ops = NativeImageOps.open(runtime.binding);
  const place = placement(header.width, header.height, target);
  try {
    const image = ops.decode(header.format, bytes, header.format === 'jpeg' ? jpegRatio(header, place) : 1);
    const [height, width, channels] = image.shape as [number, number, number];
    const sized = width === place.resizeWidth && height === place.resizeHeight;
    if ((channels === 1 || channels === 3) && (sized || bilinear(height, width, place))) {
      const decoded = ops.read(image);
      const pixels = sized ? decoded : resizer().resize(decoded, height, width, channels, place.resizeHeight, place.resizeWidth);
      writeTarget(pixels, place.resizeWidth, place.resizeHeight, channels, place, target, out);
      return;
    }
    const tf = runtime.tfjs();
    const pixels = tf.tidy(() => {
      let decoded = ops.toTensor(image, tf) as tfjs.Tensor3D;
      if (channels === 2 || channels === 4) decoded = flattened(tf, decoded, target.background);
      if (!sized) decoded = resized(tf, decoded, place);
      // Resized and flattened values already lie within 0-255.
      return decoded.dtype === 'int32' ? decoded : tf.cast(tf.round(decoded), 'int32');
    });
    try {
      writeTarget(pixels.dataSync() as Int32Array, place.resizeWidth, place.resizeHeight, pixels.shape[2]!, place, target, out);
    } finally {
      pixels.dispose();
    }
  } finally {
    ops.dispose();
  }
}

let bilinearResizer: BilinearResizer | undefined;
/** This thread's resizer, loaded on first use. */
const resizer = () => (bilinearResizer ??= BilinearResizer.load());

/** `colour * alpha + background * (1 - alpha)`, as sharp's flatten. */
function flattened(tf: TensorFlow, image: tfjs.Tensor3D, background: number): tfjs.Tensor3D {
  const colours = image.shape[2]! - 1;
  const [colour, alpha] = tf.split(tf.cast(image, 'float32'), [colours, 1], 2) as [tfjs.Tensor3D, tfjs.Tensor3D];
  const a = tf.div(alpha, 255);
  return tf.round(tf.add(tf.mul(colour, a), tf.mul(tf.sub(1, a), background))) as tfjs.Tensor3D;
}

/** sharp's resize: bilinear for small shrinks (cheap, and close to lanczos3 there), else libvips' own reduction. */
function resized(tf: TensorFlow, image: tfjs.Tensor3D, place: Placement): tfjs.Tensor3D {
  if (bilinear(image.shape[0], image.shape[1], place)) {
    return tf.image.resizeBilinear(image, [place.resizeHeight, place.resizeWidth], false, true);
  }
  // lanczos3's negative lobes overshoot.
  return tf.clipByValue(reducedAsLibvips(tf, image, place), 0, 255);
}

/**
 * libvips first averages whole blocks (a box shrink by the integer part of half the factor), then reduces the rest
 * with a lanczos3 kernel widened by the remaining factor. Each axis is one matrix product with that axis' weights:
 * denser than the kernel needs, but one native op, faster here than gathering the taps.
 */
function reducedAsLibvips(tf: TensorFlow, image: tfjs.Tensor3D, { resizeWidth, resizeHeight }: Placement): tfjs.Tensor3D {
  let out = tf.cast(image, 'float32');
  const shrink = (from: number, to: number) => Math.max(1, Math.floor(from / to / SHRINK_GAP));
  const [blockY, blockX] = [shrink(out.shape[0]!, resizeHeight), shrink(out.shape[1]!, resizeWidth)];
  if (blockX > 1 || blockY > 1) out = tf.avgPool(out, [blockY, blockX], [blockY, blockX], 'valid');
  const [height, width, channels] = out.shape as [number, number, number];
  // Rows on [h, w * c]; then columns on [H * c, w], channels moved ahead of columns.
  if (height !== resizeHeight) {
    const alongY = tf.matMul(lanczosWeights(tf, height, resizeHeight), tf.reshape(out, [height, width * channels]));
    out = tf.reshape(alongY, [resizeHeight, width, channels]);
  }
  if (width === resizeWidth) return out;
  const columnsLast = tf.reshape(tf.transpose(out, [0, 2, 1]), [resizeHeight * channels, width]);
  const alongX = tf.matMul(columnsLast, lanczosWeights(tf, width, resizeWidth), false, true);
  return tf.transpose(tf.reshape(alongX, [resizeHeight, channels, resizeWidth]), [0, 2, 1]);
}

/** Downscales by at most this factor (what a JPEG's DCT scaling leaves) are bilinear. */
const BILINEAR_UP_TO = 2;

const bilinear = (height: number, width: number, place: Placement) => height <= place.resizeHeight * BILINEAR_UP_TO && width <= place.resizeWidth * BILINEAR_UP_TO;

/** libvips' default gap: the box shrink leaves at least this factor to the kernel. */
const SHRINK_GAP = 2;

const lanczos3 = (x: number) => (x === 0 ? 1 : Math.abs(x) >= 3 ? 0 : (3 * Math.sin(Math.PI * x) * Math.sin((Math.PI * x) / 3)) / (Math.PI * Math.PI * x * x));

/** [to, from] weights resampling one axis of `from` pixels to `to`, edge pixels extended; downscaling widens the kernel. */
function lanczosWeights(tf: TensorFlow, from: number, to: number): tfjs.Tensor2D {
  const weights = new Float32Array(to * from);
  const scale = from / to;
  const stretch = Math.max(1, scale);
  for (let o = 0; o < to; o++) {
    const centre = (o + 0.5) * scale - 0.5;
    const taps: [number, number][] = [];
    for (let i = Math.floor(centre - 3 * stretch); i <= Math.ceil(centre + 3 * stretch); i++) taps.push([i, lanczos3((i - centre) / stretch)]);
    const sum = taps.reduce((total, [, w]) => total + w, 0);
    for (const [i, w] of taps) weights[o * from + Math.min(from - 1, Math.max(0, i))]! += w / sum;
  }
  return tf.tensor2d(weights, [to, from]);
}
