import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec } from './codec';
import { keysFromEnvironment } from './key-file';

/**
 * The data converter every worker and client of the project uses: payloads encrypted with the keys of
 * `TEMPORAL_ML_ENCRYPTION_KEY_FILE` when it is set, else Temporal's default. Throws KeyFileError on a bad key file,
 * so a process fails at startup rather than at its first payload.
 */
export function dataConverterFromEnvironment(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const keys = keysFromEnvironment(env);
  return keys ? { payloadCodecs: [new AesGcmCodec(keys)] } : undefined;
}
