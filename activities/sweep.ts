import { readChain } from '../lib/artifact-chain';
import { artifactStore } from '../lib/artifacts';
import { settings } from '../lib/config';
import { InvalidDatasetError, readManifest } from '../lib/datasets/manifest';
import type { TrialOutcome } from '../lib/sweep';
import { invalidInput } from '../lib/validate';

export interface SweepConstraints {
  /** This worker's ceiling on trials per sweep (`TEMPORAL_ML_MAX_SWEEP_TRIALS`). */
  maxTrials: number;
  /** Validation images in the dataset, which trials are ranked on. */
  validationImages: number;
}

/** What a sweep must know before its first trial: the worker's trial ceiling and the size of the validation split. */
export async function sweepConstraints(input: { manifestUri: string }): Promise<SweepConstraints> {
  const store = artifactStore();
  const manifest = await readManifest(store, input.manifestUri).catch((err: Error) => {
    throw err instanceof InvalidDatasetError ? invalidInput('manifestUri', err.message) : err;
  });
  return { maxTrials: settings().limits.maxSweepTrials, validationImages: manifest.counts.validation };
}

/** One run's finished trials, linked to the part of the runs before it. */
export interface TrialTablePart {
  previousUri: string | null;
  trials: TrialOutcome[];
}

/** Stores one run's trials, so the table of a long sweep never travels through workflow history. */
export async function storeTrialTablePart(part: TrialTablePart): Promise<string> {
  return (await artifactStore().putBlob(Buffer.from(JSON.stringify(part)), '.json')).uri;
}

/**
 * Joins the last run's trials and every earlier part into one JSON array, one row per trial in trial order; returns
 * its URI. An ASHA trial reports once per rung it reaches, and its row is the highest rung's.
 */
export async function writeTrialTable(last: TrialTablePart): Promise<string> {
  const store = artifactStore();
  const rows = await readChain(store, last, (part) => part.trials);
  const latest = new Map<number, TrialOutcome>();
  for (const row of rows) if ((row.rung ?? 0) >= (latest.get(row.trial)?.rung ?? 0)) latest.set(row.trial, row);
  const trials = [...latest.values()].sort((a, b) => a.trial - b.trial);
  return (await store.putBlob(Buffer.from(JSON.stringify(trials)), '.json')).uri;
}
