import type { AddressInfo } from 'node:net';
import { codecServerSettings } from '../lib/config';
import { AesGcmCodec } from '../lib/encryption/codec';
import { KEY_FILE_VARIABLE, keysFromEnvironment } from '../lib/encryption/key-file';
import { startCodecServer } from './codec-server';

/** `npm run codec-server`: decodes payloads for the Web UI and the `temporal` CLI with the workers' key file. */
async function main(): Promise<void> {
  const keys = keysFromEnvironment();
  if (!keys) throw new Error(`${KEY_FILE_VARIABLE} is not set: the codec server needs the key file the workers use`);
  const options = codecServerSettings();
  const server = await startCodecServer(new AesGcmCodec(keys), options);
  const { port } = server.address() as AddressInfo;
  console.log(`Codec server on http://${options.host}:${port} (keys ${keys.map((k) => k.id).join(', ')}; browsers allowed from ${options.allowedOrigins.join(', ')})`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => server.close(() => process.exit(0)));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
