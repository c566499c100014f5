import { readChain } from '../lib/artifact-chain';
import { artifactStore } from '../lib/artifacts';
import type { RoundRecord } from '../lib/distributed/rounds';

/** One run's rounds, linked to the part of the runs before it. */
export interface RoundHistoryPart {
  previousUri: string | null;
  rounds: RoundRecord[];
}

/** Stores one run's rounds, so the history of a long distributed run never travels through workflow history. */
export async function storeRoundHistoryPart(part: RoundHistoryPart): Promise<string> {
  return (await artifactStore().putBlob(Buffer.from(JSON.stringify(part)), '.json')).uri;
}

/** Joins the last run's rounds and every earlier part into one JSON array in round order; returns its URI. */
export async function writeRoundHistory(last: RoundHistoryPart): Promise<string> {
  const store = artifactStore();
  const rounds = await readChain(store, last, (part) => part.rounds);
  rounds.sort((a, b) => a.round - b.round);
  return (await store.putBlob(Buffer.from(JSON.stringify(rounds)), '.json')).uri;
}
