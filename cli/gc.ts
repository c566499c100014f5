/**
 * `npm run cli -- gc [--older-than 7d] [--dry-run]`: removes stored artifacts that no run Temporal holds can reach,
 * and staging files writers left behind, once they are older than `--older-than`.
 */
import type { Client } from '@temporalio/client';
import { artifactStore } from '../lib/artifacts';
import { mapWithConcurrency } from '../lib/concurrency';
import { kindOf, type GcBackend, type StoredEntry } from '../lib/gc/backend';
import { OptionError, parseDuration } from '../lib/gc/duration';
import { gcBackendFor } from '../lib/gc/backend-for';
import { planCollection } from '../lib/gc/plan';
import { rootsFromTemporal } from './gc-roots';

export const GC_USAGE = 'cli gc [--older-than 7d] [--dry-run]';

export interface GcOptions {
  olderThanMs: number;
  dryRun: boolean;
}

export function parseGcOptions(args: string[]): GcOptions {
  const options: GcOptions = { olderThanMs: parseDuration('7d', '--older-than'), dryRun: false };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--dry-run') options.dryRun = true;
    else if (args[i] === '--older-than' && args[i + 1] !== undefined) options.olderThanMs = parseDuration(args[++i]!, '--older-than');
    else throw new OptionError(`gc: unexpected argument ${JSON.stringify(args[i])}; usage: ${GC_USAGE}`);
  }
  return options;
}

const total = (entries: StoredEntry[]) => entries.reduce((sum, entry) => sum + entry.bytes, 0);
const mebibytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const describe = (entries: StoredEntry[]) => `${entries.length} artifact(s), ${total(entries)} bytes (${mebibytes(total(entries))})`;

export async function gcCommand(client: Client, options: GcOptions, print: (line: string) => void, backend: GcBackend = gcBackendFor(artifactStore())): Promise<void> {
  const startedAt = Date.now();
  const roots = await rootsFromTemporal(client, backend.references);
  const keepModifiedSince = new Date(Math.min(startedAt - options.olderThanMs, roots.oldestBusyStart?.getTime() ?? Infinity));
  print(
    `Roots: ${roots.openWorkflowIds.length} open and ${roots.closedRuns} closed run(s) and ${roots.schedules} schedule(s) referencing ${roots.references.size} artifact(s); ` +
      `keeping everything modified since ${keepModifiedSince.toISOString()}`,
  );
  const plan = await planCollection(backend, { references: roots.references, openWorkflowIds: roots.openWorkflowIds, keepModifiedSince });
  if (options.dryRun) {
    for (const entry of plan.remove) print(`would remove ${entry.key} ${entry.bytes} bytes (${kindOf(entry.key)}, modified ${entry.modified.toISOString()})`);
    print(`Dry run: would remove ${describe(plan.remove)}; keeping ${describe(plan.keep)}`);
    return;
  }
  await mapWithConcurrency(plan.remove, 8, (entry) => backend.remove(entry.key));
  print(`Removed ${describe(plan.remove)}; kept ${describe(plan.keep)}`);
}
