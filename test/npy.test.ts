import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeNpy, encodeNpy } from '../lib/npy';

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
});
