import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { normalizeInto } from '../preprocessing/normalize';
import { shardOfRow } from './shard-of-row';
import type { OpenShard, ShardRowsRequest, ShardRowsResponse, ShardRowsSetup } from './shard-rows';

/**
 * The thread that reads a ShardRowReader's rows: positioned reads (pread) into one reused buffer, normalized into a
 * new float32 array handed back to the reader's thread. Reads happen here so that they overlap the training steps.
 * The reader opens and closes the files; each request carries the descriptors of the shards it reads.
 */
const setup = workerData as ShardRowsSetup;
let scratch = new Uint8Array(0);

function read(rows: Int32Array, files: OpenShard[]): Float32Array {
  const { rowBytes, rowValues } = setup;
  const fileOf = new Map(files.map((file) => [file.shard, file]));
  if (scratch.length < rows.length * rowBytes) scratch = new Uint8Array(rows.length * rowBytes);
  // Rows that follow one another in one shard are read together (a validation pass reads whole runs).
  for (let start = 0; start < rows.length; ) {
    const s = shardOfRow(setup.shards, rows[start]!);
    const shard = setup.shards[s]!;
    const file = fileOf.get(s)!;
    let end = start + 1;
    while (end < rows.length && rows[end] === rows[end - 1]! + 1 && rows[end]! < shard.firstRow + shard.count) end++;
    const row = rows[start]! - shard.firstRow;
    const length = (end - start) * rowBytes;
    const bytesRead = readSync(file.fd, scratch, start * rowBytes, length, file.dataOffset + row * rowBytes);
    if (bytesRead !== length) throw Object.assign(new Error(`the dataset shard ${shard.uri} ends before row ${row + end - start - 1} of its ${shard.count}`), { name: 'InvalidDatasetError' });
    start = end;
  }
  const out = new Float32Array(rows.length * rowValues);
  const bytes = scratch.subarray(0, rows.length * rowBytes);
  if (setup.dtype === 'uint8') normalizeInto(bytes, setup.spec, out, 0);
  else out.set(new Float32Array(bytes.slice().buffer));
  return out;
}

parentPort!.on('message', ({ id, rows, files }: ShardRowsRequest) => {
  try {
    const images = read(rows, files);
    parentPort!.postMessage({ id, images } satisfies ShardRowsResponse, [images.buffer as ArrayBuffer]);
  } catch (err) {
    parentPort!.postMessage({ id, error: { name: (err as Error).name, message: (err as Error).message } } satisfies ShardRowsResponse);
  }
});
