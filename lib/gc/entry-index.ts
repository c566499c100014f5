import type { StoredEntry } from './backend';

const ancestorsOf = (key: string) => key.split('/').slice(0, -1).map((_, i, segments) => segments.slice(0, i + 1).join('/'));

/**
 * Stored entries by key, to resolve a reference whichever unit a backend lists: a reference names an entry, a file
 * inside a directory entry (`<listing>/index.json`), or a directory whose files are entries of their own (objects
 * under a prefix).
 */
export class EntryIndex {
  private readonly byKey = new Map<string, StoredEntry>();
  private readonly byAncestor = new Map<string, StoredEntry[]>();

  constructor(readonly entries: StoredEntry[]) {
    for (const entry of entries) {
      this.byKey.set(entry.key, entry);
      for (const ancestor of ancestorsOf(entry.key)) {
        const under = this.byAncestor.get(ancestor);
        if (under) under.push(entry);
        else this.byAncestor.set(ancestor, [entry]);
      }
    }
  }

  /** The entries a reference to `key` keeps alive. */
  resolve(key: string): StoredEntry[] {
    const exact = this.byKey.get(key);
    const containing = ancestorsOf(key).flatMap((ancestor) => this.byKey.get(ancestor) ?? []);
    return [...(exact ? [exact] : []), ...containing, ...(this.byAncestor.get(key) ?? [])];
  }
}
