import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { FastFormat } from '../lib/preprocessing/decoders/header';
import { NativeImageOps } from '../lib/preprocessing/decoders/native-image-ops';
import { loadNative } from '../lib/tf';
import { formatMatrix, photoLike } from './helpers/image-formats';
import type { TensorFlowNode } from './helpers/tfjs-node';

const FORMATS: Record<string, FastFormat> = {
  'jpeg baseline': 'jpeg',
  'jpeg progressive': 'jpeg',
  'jpeg gray': 'jpeg',
  'png rgb': 'png',
  'png gray': 'png',
  'png palette': 'png',
  'png interlaced': 'png',
  gif: 'gif',
  bmp: 'bmp',
  'jpeg photo': 'jpeg',
};

describe('native uint8 image ops', () => {
  let tf: TensorFlowNode;
  let matrix: Record<string, Buffer>;
  before(async () => {
    tf = loadNative() as TensorFlowNode;
    matrix = await formatMatrix(120, 90);
    // A 640x480 JPEG scaled to 1/2 in its DCT, as photos are.
    matrix['jpeg photo'] = await sharp(photoLike(640, 480), { raw: { width: 640, height: 480, channels: 4 } }).removeAlpha().jpeg({ quality: 90 }).toBuffer();
  });

  /** tfjs' route: decode to int32, resize as float, round, cast, read. */
  function throughTfjs(bytes: Buffer, format: FastFormat, ratio: 1 | 2, size: [number, number] | null): Int32Array {
    const pixels = tf.tidy(() => {
      const decoded = format === 'jpeg' ? tf.node.decodeJpeg(bytes, 0, ratio, true, false, 1, 'INTEGER_ACCURATE') : tf.node.decodeImage(bytes, 0, 'int32', false);
      return size ? tf.cast(tf.round(tf.image.resizeBilinear(decoded, size, false, true)), 'int32') : decoded;
    });
    try {
      return pixels.dataSync() as Int32Array;
    } finally {
      pixels.dispose();
    }
  }

  it('decode, resize and read give exactly the bytes of the same ops through tfjs, for every fast-path format', () => {
    // 40x30 (1 or 3 channels: a count of bytes divisible by 4) and 37x23 (851 or 2,553: not), up and down.
    for (const [name, format] of Object.entries(FORMATS)) {
      for (const ratio of format === 'jpeg' ? ([1, 2] as const) : ([1] as const)) {
        for (const size of [null, [30, 40], [23, 37], [200, 150]] as const) {
          const ops = NativeImageOps.open(tf);
          try {
            const image = ops.decode(format, matrix[name]!, ratio);
            const pixels = size ? ops.resizeBilinear(image, size[0], size[1]) : image;
            const expected = throughTfjs(matrix[name]!, format, ratio, size ? [size[0], size[1]] : null);
            const actual = ops.read(pixels);
            assert.equal(actual.length, expected.length, `${name}, ratio ${ratio}, ${size}`);
            assert.deepEqual(Array.from(actual), Array.from(expected), `${name}, ratio ${ratio}, ${size}`);
          } finally {
            ops.dispose();
          }
        }
      }
    }
  });

  it('hands tfjs an int32 tensor of the decoded image, and deletes every handle it made on dispose', () => {
    const before = NativeImageOps.liveHandles(tf);
    const ops = NativeImageOps.open(tf);
    const image = ops.decode('png', matrix['png rgb']!, 1);
    const tensor = ops.toTensor(image);
    ops.read(ops.resizeBilinear(image, 45, 60));
    ops.read(ops.resizeBilinear(image, 23, 37));
    assert.ok(NativeImageOps.liveHandles(tf) > before + 10);
    ops.dispose();
    try {
      assert.equal(NativeImageOps.liveHandles(tf), before + 1, 'only the tensor handed to tfjs is left');
      assert.equal(tensor.dtype, 'int32');
      assert.deepEqual(tensor.shape, [90, 120, 3]);
      assert.deepEqual(Array.from(tensor.dataSync()), Array.from(throughTfjs(matrix['png rgb']!, 'png', 1, null)));
    } finally {
      tensor.dispose();
    }
    assert.equal(NativeImageOps.liveHandles(tf), before);
  });

  it("throws TensorFlow's error on bytes it cannot decode, leaving no handle behind", () => {
    const before = NativeImageOps.liveHandles(tf);
    const ops = NativeImageOps.open(tf);
    assert.throws(() => ops.decode('png', matrix['png rgb']!.subarray(0, 200), 1), /PNG|png|decode/i);
    ops.dispose();
    assert.equal(NativeImageOps.liveHandles(tf), before);
  });
});
