import type { ReferenceSyntax } from './references';

/** One stored artifact as garbage collection sees it: the unit it keeps or removes as a whole. */
export interface StoredEntry {
  /** Store-relative key, `/`-separated (`sha256/ab/<sha>.npy`, `cache/preprocess/...json`, `tmp/...`). */
  key: string;
  bytes: number;
  /** The newest modification of anything in it. */
  modified: Date;
  /** For a directory stored as one unit: the keys of its files relative to `key`. */
  files?: string[];
}

/**
 * What garbage collection needs of a storage backend. A backend whose listing yields one entry per object (object
 * storage) works as well as one that groups a directory into one entry: references are matched by key prefix.
 */
export interface GcBackend {
  readonly references: ReferenceSyntax;
  list(): Promise<StoredEntry[]>;
  /** The bytes stored under `key` (an entry, or a file of a directory entry); undefined when it is gone. */
  read(key: string): Promise<Buffer | undefined>;
  remove(key: string): Promise<void>;
}

export type EntryKind = 'content' | 'named' | 'staging';

/** A temporary name an atomic write or a discard leaves when its process dies (see lib/atomic-write.ts). */
const STAGING_NAME = /\.(tmp|discard)-\d+-[0-9a-f]+$/;

/**
 * Content-addressed artifacts live under `sha256/`; scratch folders under `tmp/`; every other key is a named
 * (mutable) artifact such as a cache entry or a record.
 */
export function kindOf(key: string): EntryKind {
  if (key.startsWith('tmp/') || key.split('/').some((segment) => STAGING_NAME.test(segment))) return 'staging';
  return key.startsWith('sha256/') ? 'content' : 'named';
}
