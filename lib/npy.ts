/** NumPy `.npy` (format 1.0) encoding for the typed arrays the pipeline stores: readable by `numpy.load`. */

export type NpyArray =
  | { dtype: 'float32'; shape: number[]; data: Float32Array }
  | { dtype: 'int32'; shape: number[]; data: Int32Array }
  | { dtype: 'uint8'; shape: number[]; data: Uint8Array };

const DESCR = { float32: '<f4', int32: '<i4', uint8: '|u1' } as const;
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

export function encodeNpy(array: NpyArray): Buffer {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (count !== array.data.length) {
    throw new Error(`shape [${array.shape}] holds ${count} values but the data has ${array.data.length}`);
  }
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${DESCR[array.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Magic (6) + version (2) + header length (2) + header, padded with spaces and a newline to a multiple of 64.
  const unpadded = 10 + header.length + 1;
  header = header + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  MAGIC.copy(prefix, 0);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const body = Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), body]);
}

export function decodeNpy(bytes: Uint8Array): NpyArray {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!buf.subarray(0, 6).equals(MAGIC)) throw new Error('not a .npy file (bad magic)');
  const major = buf[6];
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = buf.subarray(headerStart, headerStart + headerLength).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`malformed .npy header: ${header}`);
  if (fortran === 'True') throw new Error('Fortran-ordered .npy arrays are not supported');
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  // Copy so the typed array is aligned regardless of the header length.
  const body = new Uint8Array(buf.subarray(headerStart + headerLength)).buffer;
  switch (descr) {
    case '<f4':
      return { dtype: 'float32', shape, data: new Float32Array(body) };
    case '<i4':
      return { dtype: 'int32', shape, data: new Int32Array(body) };
    case '|u1':
      return { dtype: 'uint8', shape, data: new Uint8Array(body) };
    default:
      throw new Error(`unsupported .npy dtype ${descr}`);
  }
}

/** An array of the dtype its data's type stands for. */
export function npyArrayOf(data: Float32Array | Int32Array | Uint8Array, shape: number[]): NpyArray {
  if (data instanceof Float32Array) return { dtype: 'float32', shape, data };
  if (data instanceof Int32Array) return { dtype: 'int32', shape, data };
  return { dtype: 'uint8', shape, data };
}

/** The given rows (indices along the first axis) of an array, in that order, as a new array. */
export function pickRows(array: NpyArray, rows: readonly number[]): NpyArray {
  const rowSize = array.shape.slice(1).reduce((a, b) => a * b, 1);
  const data = new (array.data.constructor as new (length: number) => typeof array.data)(rows.length * rowSize);
  rows.forEach((row, i) => data.set(array.data.subarray(row * rowSize, (row + 1) * rowSize), i * rowSize));
  return npyArrayOf(data, [rows.length, ...array.shape.slice(1)]);
}
