import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip, gunzipSync } from 'node:zlib';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

/** Reads an IDX file of unsigned bytes (as MNIST and Fashion-MNIST ship), gzipped or not. */
export function readIdx(bytes: Uint8Array): IdxArray {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return parseIdx(isGzip(buffer) ? gunzipSync(buffer) : buffer);
}

/** `readIdx` for a file, decompressing off the event loop. */
export async function readIdxFile(path: string): Promise<IdxArray> {
  const buffer = await readFile(path);
  return parseIdx(isGzip(buffer) ? await promisify(gunzip)(buffer) : buffer);
}

const isGzip = (buffer: Buffer) => buffer[0] === 0x1f && buffer[1] === 0x8b;

function parseIdx(raw: Buffer): IdxArray {
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) throw new Error('not an IDX file (bad magic)');
  if (raw[2] !== 0x08) throw new Error(`IDX element type 0x${raw[2]!.toString(16)} is not unsigned byte (0x08)`);
  const dimensions = raw[3]!;
  const shape = Array.from({ length: dimensions }, (_, i) => raw.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * dimensions;
  const count = shape.reduce((a, b) => a * b, 1);
  if (raw.length - offset !== count) throw new Error(`IDX header promises ${count} values but the file holds ${raw.length - offset}`);
  return { shape, data: new Uint8Array(raw.buffer, raw.byteOffset + offset, count) };
}
