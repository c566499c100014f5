import { readFileSync } from 'node:fs';

/** The variable naming the key file; unset, payloads are not encrypted. */
export const KEY_FILE_VARIABLE = 'TEMPORAL_ML_ENCRYPTION_KEY_FILE';

export interface EncryptionKey {
  /** Written into each payload's metadata, so a reader knows which key decrypts it. */
  id: string;
  /** 32 bytes: an AES-256 key. */
  key: Buffer;
}

/** A key file that cannot be used. Its message names the file and the entry, never a key's value. */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Parses a key file: a JSON list of `{ "id": "2026-01", "key": "<base64 of 32 random bytes>" }`, oldest first. The
 * last entry is the newest: it encrypts new payloads; every entry decrypts. `source` names the file in errors.
 */
export function parseKeyFile(text: string, source: string): EncryptionKey[] {
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch {
    throw new KeyFileError(`${source} is not JSON: it must hold a list of {"id": "...", "key": "<base64 of 32 bytes>"}`);
  }
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new KeyFileError(`${source} must hold a non-empty JSON list of {"id": "...", "key": "<base64 of 32 bytes>"}`);
  }
  const seen = new Set<string>();
  return entries.map((entry: unknown, index) => {
    const where = `${source}, entry ${index + 1}`;
    const { id, key } = (entry ?? {}) as { id?: unknown; key?: unknown };
    if (typeof id !== 'string' || !KEY_ID.test(id)) throw new KeyFileError(`${where}: "id" must be 1-64 letters, digits, "_", ".", ":" or "-"`);
    if (seen.has(id)) throw new KeyFileError(`${where}: the id "${id}" appears twice`);
    seen.add(id);
    if (typeof key !== 'string' || !BASE64.test(key) || key.length % 4 !== 0) throw new KeyFileError(`${where} (id "${id}"): "key" is not base64`);
    const bytes = Buffer.from(key, 'base64');
    if (bytes.length !== 32) throw new KeyFileError(`${where} (id "${id}"): "key" decodes to ${bytes.length} bytes; AES-256 needs 32 (openssl rand -base64 32)`);
    return { id, key: bytes };
  });
}

/** The keys `TEMPORAL_ML_ENCRYPTION_KEY_FILE` names, or undefined when it is unset. Throws KeyFileError on a bad file. */
export function keysFromEnvironment(env: NodeJS.ProcessEnv = process.env): EncryptionKey[] | undefined {
  const path = env[KEY_FILE_VARIABLE];
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new KeyFileError(`${KEY_FILE_VARIABLE}: cannot read the key file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseKeyFile(text, KEY_FILE_VARIABLE);
}
