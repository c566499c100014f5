import { mapWithConcurrency } from '../concurrency';
import { kindOf, type GcBackend, type StoredEntry } from './backend';
import { EntryIndex } from './entry-index';
import { referencesInText } from './references';

/** What is known to be in use, gathered from Temporal before the store is listed. */
export interface CollectionRoots {
  /** Keys of artifacts referenced by runs Temporal still holds (open runs' histories, closed runs' inputs and results). */
  references: Iterable<string>;
  /** IDs of open workflow runs: an artifact whose key contains one (a run's checkpoints) is kept. */
  openWorkflowIds: string[];
  /** An artifact modified at or after this instant is kept, and so is everything it references. */
  keepModifiedSince: Date;
}

export interface CollectionPlan {
  keep: StoredEntry[];
  remove: StoredEntry[];
}

/** Files read for references: JSON (manifests, listings, records, model.json) and reports. Binary arrays are not. */
const TEXT_FILE = /\.(json|html|txt|md)$/;
const SCAN_CONCURRENCY = 16;

/**
 * Mark and sweep. Marked are the roots (what Temporal references, recent artifacts, open runs' checkpoints) and,
 * transitively, what marked text artifacts reference. A named artifact that is not marked but references only marked
 * artifacts (a cache entry whose shards are kept, a record of such an entry) is marked too: a re-run still hits it.
 * Everything else is planned for removal; staging files are never read, so they go once they are old enough.
 */
export async function planCollection(backend: GcBackend, roots: CollectionRoots): Promise<CollectionPlan> {
  const index = new EntryIndex(await backend.list());
  const marked = new Set<StoredEntry>();
  const referencesOf = memoizedReferences(backend);

  const mark = async (start: StoredEntry[]) => {
    let frontier = start.filter((entry) => !marked.has(entry));
    frontier.forEach((entry) => marked.add(entry));
    while (frontier.length > 0) {
      const next: StoredEntry[] = [];
      for (let i = 0; i < frontier.length; i += SCAN_CONCURRENCY) {
        const found = await Promise.all(frontier.slice(i, i + SCAN_CONCURRENCY).map(referencesOf));
        for (const key of found.flatMap((keys) => [...keys])) {
          for (const entry of index.resolve(key)) {
            if (!marked.has(entry)) {
              marked.add(entry);
              next.push(entry);
            }
          }
        }
      }
      frontier = next;
    }
  };

  const since = roots.keepModifiedSince.getTime();
  const isRoot = (entry: StoredEntry) =>
    entry.modified.getTime() >= since || (kindOf(entry.key) === 'named' && roots.openWorkflowIds.some((id) => entry.key.includes(id)));
  await mark([...[...roots.references].flatMap((key) => index.resolve(key)), ...index.entries.filter(isRoot)]);

  const unmarkedNamed = () => index.entries.filter((e) => !marked.has(e) && kindOf(e.key) === 'named');
  await mapWithConcurrency(unmarkedNamed(), SCAN_CONCURRENCY, referencesOf);
  for (let changed = true; changed; ) {
    changed = false;
    for (const entry of unmarkedNamed()) {
      const targets = [...(await referencesOf(entry))].map((key) => index.resolve(key));
      if (targets.length > 0 && targets.every((resolved) => resolved.length > 0 && resolved.every((target) => marked.has(target)))) {
        await mark([entry]);
        changed = true;
      }
    }
  }
  return { keep: index.entries.filter((e) => marked.has(e)), remove: index.entries.filter((e) => !marked.has(e)) };
}

/** The keys an entry's text files reference, read once per entry. */
function memoizedReferences(backend: GcBackend): (entry: StoredEntry) => Promise<Set<string>> {
  const known = new Map<StoredEntry, Promise<Set<string>>>();
  return (entry) => {
    let references = known.get(entry);
    if (!references) {
      references = referencesIn(backend, entry);
      known.set(entry, references);
    }
    return references;
  };
}

async function referencesIn(backend: GcBackend, entry: StoredEntry): Promise<Set<string>> {
  const found = new Set<string>();
  if (kindOf(entry.key) === 'staging') return found;
  const files = entry.files ? entry.files.map((file) => `${entry.key}/${file}`) : [entry.key];
  for (const key of files.filter((file) => TEXT_FILE.test(file))) {
    const data = await backend.read(key);
    if (data) referencesInText(backend.references, data.toString('utf8'), found);
  }
  // A directory's files name each other (`<model>/weights.bin`): no reference to another artifact.
  for (const key of found) if (key === entry.key || key.startsWith(`${entry.key}/`)) found.delete(key);
  return found;
}
