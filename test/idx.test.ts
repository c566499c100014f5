import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readIdx } from '../lib/datasets/idx';

function idx(shape: number[], values: number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt8(0x08, 2);
  header.writeUInt8(shape.length, 3);
  shape.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(values)]);
}

describe('readIdx', () => {
  it('reads shapes and bytes, gzipped or not', () => {
    const file = idx([2, 2, 3], [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
    for (const bytes of [file, gzipSync(file)]) {
      const array = readIdx(bytes);
      assert.deepEqual(array.shape, [2, 2, 3]);
      assert.deepEqual([...array.data], [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
    }
  });

  it('refuses truncated files and other element types', () => {
    assert.throws(() => readIdx(idx([3], [1, 2])), /promises 3 values but the file holds 2/);
    const floats = idx([1], [0]);
    floats[2] = 0x0d;
    assert.throws(() => readIdx(floats), /not unsigned byte/);
    assert.throws(() => readIdx(Buffer.from('hello world')), /bad magic/);
  });
});
