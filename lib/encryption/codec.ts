import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKey } from './key-file';

/** The metadata encoding of an encrypted payload; its data is IV, ciphertext and tag of the whole original payload. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const ProtoPayload = temporal.api.common.v1.Payload;

/** A payload encrypted with a key this process does not hold (or tampered with): what to fix is in the message. */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
}

/**
 * AES-256-GCM over each whole payload (metadata and data), so neither the value nor its encoding is stored in clear.
 * The newest key (the last) encrypts; any key decrypts, picked by the id in the payload's metadata. Payloads that are
 * not encrypted (runs from before encryption was turned on) pass through.
 */
export class AesGcmCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly newest: EncryptionKey;

  constructor(keys: EncryptionKey[]) {
    if (keys.length === 0) throw new Error('AesGcmCodec needs at least one key');
    this.byId = new Map(keys.map(({ id, key }) => [id, key]));
    this.newest = keys[keys.length - 1]!;
  }

  get keyIds(): string[] {
    return [...this.byId.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(CIPHER, this.newest.key, iv);
      const ciphertext = Buffer.concat([cipher.update(ProtoPayload.encode(payload).finish()), cipher.final()]);
      return {
        metadata: { encoding: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(this.newest.id) },
        data: Buffer.concat([iv, ciphertext, cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
      const id = text(payload.metadata?.[KEY_ID_METADATA]);
      const key = id === undefined ? undefined : this.byId.get(id);
      if (!key) {
        throw new PayloadDecryptionError(
          `payload encrypted with key id "${id ?? '(none)'}", which the key file does not hold (it holds ${this.keyIds.map((k) => `"${k}"`).join(', ')}): add that key to TEMPORAL_ML_ENCRYPTION_KEY_FILE`,
        );
      }
      const data = Buffer.from(payload.data ?? []);
      let plaintext: Buffer;
      try {
        const decipher = createDecipheriv(CIPHER, key, data.subarray(0, IV_BYTES));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        plaintext = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new PayloadDecryptionError(`payload encrypted with key id "${id}" does not decrypt with that key: the key changed or the payload was altered`);
      }
      return ProtoPayload.decode(plaintext);
    });
  }
}

function text(bytes: Uint8Array | null | undefined): string | undefined {
  return bytes ? Buffer.from(bytes).toString() : undefined;
}
