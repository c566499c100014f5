import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { BilinearResizer } from '../lib/preprocessing/decoders/bilinear';
import { loadNative } from '../lib/tf';
import { photoLike } from './helpers/image-formats';
import type { TensorFlowNode } from './helpers/tfjs-node';

/** Photo-like pixels with 1 or 3 channels. */
function image(width: number, height: number, channels: 1 | 3): Uint8Array {
  const rgba = photoLike(width, height);
  return Uint8Array.from({ length: width * height * channels }, (_, i) => rgba[Math.floor(i / channels) * 4 + (i % channels) + (channels === 1 ? 1 : 0)]!);
}

function worstDifference(actual: Uint8Array, expected: Int32Array): number {
  return actual.reduce((worst, v, i) => Math.max(worst, Math.abs(v - expected[i]!)), 0);
}

describe('bilinear resizing in WebAssembly', () => {
  let tf: TensorFlowNode;
  before(() => {
    tf = loadNative() as TensorFlowNode;
  });

  /** TensorFlow's ResizeBilinear with half-pixel centres, rounded to bytes. */
  function throughTensorflow(pixels: Uint8Array, [height, width, channels]: number[], [toHeight, toWidth]: number[]): Int32Array {
    const resized = tf.tidy(() => tf.cast(tf.round(tf.image.resizeBilinear(tf.tensor3d(pixels, [height!, width!, channels!], 'int32'), [toHeight!, toWidth!], false, true)), 'int32'));
    try {
      return resized.dataSync() as Int32Array;
    } finally {
      resized.dispose();
    }
  }

  it("matches TensorFlow's ResizeBilinear within one level, shrinking up to 2x and enlarging, at odd sizes and 1 or 3 channels", () => {
    const resizer = BilinearResizer.load();
    // [height, width] -> [height, width]: a JPEG photo decoded at 1/2 to 224x224, exact halving, odd sizes, tiny images.
    const cases: [number, number, number, number][] = [
      [240, 320, 224, 224], [448, 448, 224, 224], [23, 37, 16, 19], [30, 40, 45, 61], [1, 1, 5, 7], [1, 9, 3, 5], [9, 1, 4, 2], [90, 120, 90, 61], [7, 300, 5, 150],
    ];
    for (const channels of [1, 3] as const) {
      for (const [height, width, toHeight, toWidth] of cases) {
        const pixels = image(width, height, channels);
        const actual = resizer.resize(pixels, height, width, channels, toHeight, toWidth);
        const expected = throughTensorflow(pixels, [height, width, channels], [toHeight, toWidth]);
        const what = `${width}x${height}x${channels} -> ${toWidth}x${toHeight}`;
        assert.equal(actual.length, expected.length, what);
        const worst = worstDifference(actual, expected);
        assert.ok(worst <= 1, `${what}: a value differs by ${worst}`);
        // Exact halves (a 2x shrink averages pairs) round up here and to even in TensorFlow: a fifth of the values there.
        // Elsewhere only the 8-bit weights differ from float32, as in the photo case, on under 2% of the values.
        const differing = actual.filter((v, i) => v !== expected[i]).length / actual.length;
        if (height === 240) assert.ok(differing < 0.02, `${what}: ${(differing * 100).toFixed(1)}% of the values differ by one`);
      }
    }
  });

  it('gives each geometry its own tables, growing its memory for larger images, and copies nothing the caller passed', () => {
    const resizer = BilinearResizer.load();
    const small = image(40, 30, 3);
    const large = image(1200, 900, 3);
    const first = Uint8Array.from(resizer.resize(small, 30, 40, 3, 20, 25));
    const shrunk = resizer.resize(large, 900, 1200, 3, 600, 800);
    assert.ok(worstDifference(shrunk, throughTensorflow(large, [900, 1200, 3], [600, 800])) <= 1, 'a larger image after a smaller one');
    assert.deepEqual(resizer.resize(small, 30, 40, 3, 20, 25), first, 'the same image and geometry again, after another one');
    assert.deepEqual(small, image(40, 30, 3), 'the input is left as it was');
  });

  it('refuses what it cannot do with a clear error: a wrong pixel count, a width shrunk beyond its reach', () => {
    const resizer = BilinearResizer.load();
    assert.throws(() => resizer.resize(new Uint8Array(10), 3, 4, 1, 2, 2), /10 bytes are not a 4x3x1 image/);
    const small = image(40, 30, 3);
    const before = Uint8Array.from(resizer.resize(small, 30, 40, 3, 20, 25));
    assert.throws(() => resizer.resize(image(800, 2, 3), 2, 800, 3, 2, 100), /out of the resizer's reach/);
    assert.deepEqual(resizer.resize(small, 30, 40, 3, 20, 25), before, 'a refused geometry leaves no half-written tables behind');
  });
});
