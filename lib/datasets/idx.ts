import { promisify } from 'node:util';
import { gunzip, gunzipSync } from 'node:zlib';
import { QuarantineError } from '../preprocessing/quarantine';
import { readConfinedFile } from '../preprocessing/readers';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

/** Reads an IDX file of unsigned bytes (as MNIST and Fashion-MNIST ship), gzipped or not. */
export function readIdx(bytes: Uint8Array): IdxArray {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return parseIdx(isGzip(buffer) ? gunzipSync(buffer) : buffer);
}

/**
 * `readIdx` for a file under `root`, read on a reader thread with the checks images get (links confined to the root,
 * FIFOs and devices refused without blocking) and decompressed off the event loop. Neither the file nor its
 * decompressed content may exceed `maxBytes`. What is wrong with the file throws a QuarantineError; anything else is a
 * failure of this worker.
 */
export async function readIdxFile(root: string, path: string, maxBytes: number): Promise<IdxArray> {
  const bytes = await readConfinedFile(root, path, maxBytes);
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return parseIdx(isGzip(buffer) ? await gunzipAtMost(buffer, maxBytes) : buffer);
}

async function gunzipAtMost(buffer: Buffer, maxBytes: number): Promise<Buffer> {
  try {
    return await promisify(gunzip)(buffer, { maxOutputLength: maxBytes });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new QuarantineError('too_large', `decompresses to more than ${maxBytes} bytes`);
    if (code.startsWith('Z_')) throw new QuarantineError('corrupt', `not valid gzip data: ${(err as Error).message}`);
    throw err;
  }
}

const isGzip = (buffer: Buffer) => buffer[0] === 0x1f && buffer[1] === 0x8b;

function parseIdx(raw: Buffer): IdxArray {
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) throw new QuarantineError('not_an_image', 'not an IDX file (bad magic)');
  if (raw[2] !== 0x08) throw new QuarantineError('not_an_image', `IDX element type 0x${raw[2]!.toString(16)} is not unsigned byte (0x08)`);
  const dimensions = raw[3]!;
  const shape = Array.from({ length: dimensions }, (_, i) => raw.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * dimensions;
  const count = shape.reduce((a, b) => a * b, 1);
  if (raw.length - offset !== count) throw new QuarantineError('truncated', `IDX header promises ${count} values but the file holds ${raw.length - offset}`);
  return { shape, data: new Uint8Array(raw.buffer, raw.byteOffset + offset, count) };
}
