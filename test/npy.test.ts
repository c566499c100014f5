import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeNpy, encodeNpy, npyArrayOf, npyFile, npyFileBytes } from '../lib/npy';

describe('npy', () => {
  it('round-trips float32, int32 and uint8 arrays with their shapes', () => {
    const float = { dtype: 'float32' as const, shape: [2, 3], data: Float32Array.from([0, 0.5, 1, -1, 2.25, 3]) };
    const int = { dtype: 'int32' as const, shape: [4], data: Int32Array.from([7, -1, 0, 9]) };
    const byte = { dtype: 'uint8' as const, shape: [1, 2, 2], data: Uint8Array.from([0, 1, 254, 255]) };
    for (const array of [float, int, byte]) assert.deepEqual(decodeNpy(encodeNpy(array)), array);
  });

  it('writes the header NumPy expects: magic, version 1.0, 64-byte aligned data, little-endian descr', () => {
    const bytes = encodeNpy({ dtype: 'float32', shape: [3], data: Float32Array.from([1, 2, 3]) });
    assert.deepEqual([...bytes.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = bytes.readUInt16LE(8);
    assert.equal((10 + headerLength) % 64, 0);
    const header = bytes.subarray(10, 10 + headerLength).toString('latin1');
    assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3,\), \} *\n$/);
    assert.equal(bytes.readFloatLE(10 + headerLength + 8), 3);
  });

  it('refuses a shape that does not match the data, and files that are not .npy', () => {
    assert.throws(() => encodeNpy({ dtype: 'int32', shape: [5], data: new Int32Array(4) }), /holds 5 values/);
    assert.throws(() => decodeNpy(Buffer.from('not numpy at all')), /bad magic/);
  });

  it('writes rows in place behind room for the header: the file of the rows written is that same memory, as encodeNpy would write it', () => {
    for (const dtype of ['uint8', 'float32'] as const) {
      const shard = npyFile(dtype, 5, [2, 3]);
      shard.data.set(Array.from({ length: 18 }, (_, i) => i / 2));
      const file = shard.file(3);
      assert.equal(file.buffer, shard.data.buffer);
      const expected = npyArrayOf(shard.data.slice(0, 18), [3, 2, 3]);
      assert.deepEqual(decodeNpy(file), expected);
      assert.deepEqual(file, encodeNpy(expected));
      assert.throws(() => shard.file(6), /6 rows do not fit/);
    }
  });

  it('lays files out one after another in memory it is given, each starting at a multiple of 64 bytes', () => {
    const shapes = [
      { dtype: 'uint8', maxRows: 3, rowShape: [5, 1] },
      { dtype: 'float32', maxRows: 2, rowShape: [3, 3] },
      { dtype: 'uint8', maxRows: 1, rowShape: [7] },
    ] as const;
    const sizes = shapes.map(({ dtype, maxRows, rowShape }) => npyFileBytes(dtype, maxRows, [...rowShape]));
    assert.ok(sizes.every((bytes) => bytes % 64 === 0));
    const memory = new Uint8Array(new SharedArrayBuffer(sizes.reduce((a, b) => a + b, 0)));
    let offset = 0;
    const files = shapes.map(({ dtype, maxRows, rowShape }, i) => {
      const file = npyFile(dtype, maxRows, [...rowShape], memory.subarray(offset, offset + sizes[i]!));
      assert.equal(file.data.byteOffset % 4, 0);
      assert.ok(file.data.byteOffset >= offset && file.data.byteOffset + file.data.byteLength <= offset + sizes[i]!);
      offset += sizes[i]!;
      return file;
    });
    files.forEach((file, i) => file.data.fill(i + 0.5));
    files.forEach((file, i) => {
      const written = file.file(shapes[i]!.maxRows);
      assert.equal(written.buffer, memory.buffer);
      assert.ok(Buffer.isBuffer(written));
      assert.deepEqual(decodeNpy(written), npyArrayOf(file.data.slice(), [shapes[i]!.maxRows, ...shapes[i]!.rowShape]));
    });
    assert.throws(() => npyFile('float32', 2, [3, 3], memory.subarray(0, 64)), /does not fit/);
  });

  it('keeps the header the room it was given when fewer rows need a shorter one, 64-byte aligned', () => {
    // A first dimension of 10^k needs one digit more than any smaller row count: find trailing axes of size 1 and a k
    // for which that digit crosses a multiple of 64.
    const headerOf = (shape: number[]) => encodeNpy({ dtype: 'uint8', shape, data: new Uint8Array(shape[0]!) }).byteLength - shape[0]!;
    const crossing = Array.from({ length: 30 }, (_, ones) => Array<number>(ones + 1).fill(1))
      .flatMap((rowShape) => [10, 100, 1000, 10000].map((maxRows) => ({ rowShape, maxRows })))
      .find(({ rowShape, maxRows }) => headerOf([maxRows, ...rowShape]) !== headerOf([maxRows - 1, ...rowShape]));
    assert.ok(crossing, 'some row count crosses a 64-byte boundary');
    const { rowShape, maxRows } = crossing;
    const shard = npyFile('uint8', maxRows, rowShape);
    shard.data.fill(7);
    const file = shard.file(maxRows - 1);
    assert.equal(file.byteLength - (maxRows - 1), headerOf([maxRows, ...rowShape]));
    const decoded = decodeNpy(file);
    assert.deepEqual(decoded.shape, [maxRows - 1, ...rowShape]);
    assert.ok(decoded.data.every((v) => v === 7));
  });
});
