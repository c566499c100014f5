import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import type { FastFormat } from '../lib/preprocessing/decoders/header';
import { NativeImageOps, type NativeBinding } from '../lib/preprocessing/decoders/native-image-ops';
import { loadNative } from '../lib/tf';
import { bmp, formatMatrix, photoLike } from './helpers/image-formats';
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
  let binding: NativeBinding;
  let matrix: Record<string, Buffer>;
  /** The same formats at 37x23 (851 or 2,553 bytes) and a 641x479 photo: byte counts no multiple of four. */
  let oddMatrix: Record<string, Buffer>;
  before(async () => {
    tf = loadNative() as TensorFlowNode;
    binding = NativeImageOps.loadBinding();
    matrix = await formatMatrix(120, 90);
    oddMatrix = await formatMatrix(37, 23);
    // A 640x480 JPEG scaled to 1/2 in its DCT, as photos are.
    const photo = (width: number, height: number) => sharp(photoLike(width, height), { raw: { width, height, channels: 4 } }).removeAlpha().jpeg({ quality: 90 }).toBuffer();
    matrix['jpeg photo'] = await photo(640, 480);
    oddMatrix['jpeg photo'] = await photo(641, 479);
  });

  /** tfjs' route: decode to int32 and read. */
  function throughTfjs(bytes: Buffer, format: FastFormat, ratio: 1 | 2): Int32Array {
    const pixels = format === 'jpeg' ? tf.node.decodeJpeg(bytes, 0, ratio, true, false, 1, 'INTEGER_ACCURATE') : tf.node.decodeImage(bytes, 0, 'int32', false);
    try {
      return pixels.dataSync() as Int32Array;
    } finally {
      pixels.dispose();
    }
  }

  it('decode and read give exactly the bytes of the same decoding through tfjs, for every fast-path format and any byte count', () => {
    for (const [size, images] of [['even', matrix], ['odd', oddMatrix]] as const) {
      for (const [name, format] of Object.entries(FORMATS)) {
        const bytes = images[name]!;
        for (const ratio of format === 'jpeg' ? ([1, 2] as const) : ([1] as const)) {
          const ops = NativeImageOps.open(binding);
          try {
            const actual = ops.read(ops.decode(format, bytes, ratio));
            assert.ok(actual instanceof Uint8Array);
            assert.deepEqual(Array.from(actual), Array.from(throughTfjs(bytes, format, ratio)), `${name} (${size} byte count), ratio ${ratio}`);
          } finally {
            ops.dispose();
          }
        }
      }
    }
  });

  it('hands tfjs an int32 tensor of the decoded image, and deletes every handle it made on dispose', () => {
    const before = NativeImageOps.liveHandles(binding);
    const ops = NativeImageOps.open(binding);
    const image = ops.decode('png', matrix['png rgb']!, 1);
    const tensor = ops.toTensor(image, tf);
    ops.read(image);
    ops.read(ops.decode('png', oddMatrix['png rgb']!, 1));
    assert.ok(NativeImageOps.liveHandles(binding) > before + 8);
    ops.dispose();
    try {
      assert.equal(NativeImageOps.liveHandles(binding), before + 1, 'only the tensor handed to tfjs is left');
      assert.equal(tensor.dtype, 'int32');
      assert.deepEqual(tensor.shape, [90, 120, 3]);
      assert.deepEqual(Array.from(tensor.dataSync()), Array.from(throughTfjs(matrix['png rgb']!, 'png', 1)));
    } finally {
      tensor.dispose();
    }
    assert.equal(NativeImageOps.liveHandles(binding), before);
  });

  it("loads tfjs-node's binding without TensorFlow.js, the same module TensorFlow.js then runs on", async () => {
    assert.equal(NativeImageOps.loadBinding(), NativeImageOps.bindingOf(tf), 'one binding in this thread');
    // A thread of its own, which has loaded nothing yet.
    const source = `const { parentPort, workerData } = require('node:worker_threads');
      const { NativeImageOps } = require(workerData.module);
      const ops = NativeImageOps.open(NativeImageOps.loadBinding());
      const shape = ops.decode('bmp', workerData.bmp, 1).shape;
      ops.dispose();
      parentPort.postMessage({ shape, tfjs: Object.keys(require.cache).filter((path) => path.includes('tfjs-core')).length });`;
    const module = join(__dirname, '..', 'lib', 'preprocessing', 'decoders', 'native-image-ops.js');
    const thread = new Worker(source, { eval: true, workerData: { module, bmp: bmp(new Uint8Array(5 * 4 * 3), 5, 4) } });
    const [result] = (await once(thread, 'message')) as [{ shape: number[]; tfjs: number }];
    await thread.terminate();
    assert.deepEqual(result, { shape: [4, 5, 3], tfjs: 0 });
  });

  it("throws TensorFlow's error on bytes it cannot decode, leaving no handle behind", () => {
    const before = NativeImageOps.liveHandles(binding);
    const ops = NativeImageOps.open(binding);
    assert.throws(() => ops.decode('png', matrix['png rgb']!.subarray(0, 200), 1), /PNG|png|decode/i);
    ops.dispose();
    assert.equal(NativeImageOps.liveHandles(binding), before);
  });
});
