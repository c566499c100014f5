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
  const header = npyHeader(array.dtype, array.shape);
  return Buffer.concat([header, Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength)]);
}

/**
 * Magic, version, header length and header, padded with spaces and a newline to `length` bytes when given (a
 * multiple of 64 at least as long as needed), else to the next multiple of 64.
 */
function npyHeader(dtype: NpyArray['dtype'], shape: number[], length?: number): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const text = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = 10 + text.length + 1;
  const total = length ?? unpadded + ((64 - (unpadded % 64)) % 64);
  if (total < unpadded || total % 64 !== 0) throw new Error(`an .npy header of shape [${shape}] does not fit ${total} bytes`);
  const header = Buffer.alloc(total, 0x20);
  MAGIC.copy(header, 0);
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(total - 10, 8);
  header.write(text, 10, 'latin1');
  header[total - 1] = 0x0a;
  return header;
}

/** Bytes of an `.npy` file of up to `maxRows` rows of `rowShape` as `npyFile` lays it out (a multiple of 64). */
export function npyFileBytes(dtype: 'float32' | 'uint8', maxRows: number, rowShape: number[]): number {
  const bytes = npyHeader(dtype, [maxRows, ...rowShape]).byteLength + maxRows * rowShape.reduce((a, b) => a * b, 1) * (dtype === 'float32' ? 4 : 1);
  return Math.ceil(bytes / 64) * 64;
}

/**
 * An `.npy` file allocated whole before its rows are written: `data` holds up to `maxRows` rows of `rowShape`, in
 * place behind room for the header, and `file(rows)` is the file of the first `rows` of them, without a copy. In
 * `memory` when given (at least `npyFileBytes`, starting at a multiple of 4), else in memory of its own. The file is a
 * Buffer even over shared memory, which the S3 client's hashing takes only as a Buffer.
 */
export function npyFile<D extends 'float32' | 'uint8'>(
  dtype: D,
  maxRows: number,
  rowShape: number[],
  memory?: Uint8Array,
): { data: D extends 'float32' ? Float32Array : Uint8Array; file(rows: number): Buffer } {
  const headerBytes = npyHeader(dtype, [maxRows, ...rowShape]).byteLength;
  const rowValues = rowShape.reduce((a, b) => a * b, 1);
  const valueBytes = dtype === 'float32' ? 4 : 1;
  const fileBytes = headerBytes + maxRows * rowValues * valueBytes;
  if (memory && memory.byteLength < fileBytes) throw new Error(`an .npy file of ${fileBytes} bytes does not fit ${memory.byteLength}`);
  // Not zero-filled: a file holds only rows written first.
  const bytes = memory ? Buffer.from(memory.buffer, memory.byteOffset, fileBytes) : Buffer.allocUnsafeSlow(fileBytes);
  const start = bytes.byteOffset + headerBytes;
  const data = dtype === 'float32' ? new Float32Array(bytes.buffer, start, maxRows * rowValues) : new Uint8Array(bytes.buffer, start, maxRows * rowValues);
  return {
    data: data as D extends 'float32' ? Float32Array : Uint8Array,
    file(rows: number) {
      if (rows > maxRows) throw new Error(`${rows} rows do not fit an .npy file of ${maxRows}`);
      npyHeader(dtype, [rows, ...rowShape], headerBytes).copy(bytes, 0);
      return bytes.subarray(0, headerBytes + rows * rowValues * valueBytes);
    },
  };
}

export interface NpyHeader {
  dtype: NpyArray['dtype'];
  shape: number[];
  /** Where the values start in the file. */
  dataOffset: number;
}

/** Bytes a file's beginning must hold for `parseNpyHeader` (format 1.0 headers are at most 64 KiB). */
export const NPY_HEADER_MAX_BYTES = 12 + 65536;

/** Parses the header at the start of a `.npy` file (`bytes` may hold just that beginning). */
export function parseNpyHeader(bytes: Uint8Array): NpyHeader {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!buf.subarray(0, 6).equals(MAGIC)) throw new Error('not a .npy file (bad magic)');
  const major = buf[6];
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  if (headerStart + headerLength > buf.length) throw new Error('truncated .npy header');
  const header = buf.subarray(headerStart, headerStart + headerLength).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`malformed .npy header: ${header}`);
  if (fortran === 'True') throw new Error('Fortran-ordered .npy arrays are not supported');
  const dtype = (Object.keys(DESCR) as NpyArray['dtype'][]).find((d) => DESCR[d] === descr);
  if (!dtype) throw new Error(`unsupported .npy dtype ${descr}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  return { dtype, shape, dataOffset: headerStart + headerLength };
}

export function decodeNpy(bytes: Uint8Array): NpyArray {
  const { dtype, shape, dataOffset } = parseNpyHeader(bytes);
  // Copy so the typed array is aligned regardless of the header length.
  const body = new Uint8Array(bytes.subarray(dataOffset)).buffer;
  switch (dtype) {
    case 'float32':
      return { dtype, shape, data: new Float32Array(body) };
    case 'int32':
      return { dtype, shape, data: new Int32Array(body) };
    case 'uint8':
      return { dtype, shape, data: new Uint8Array(body) };
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
