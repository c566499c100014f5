/**
 * The model registry's state and its rules, as pure functions: the `modelRegistry` workflow holds a RegistryState and
 * runs every update through these, so the rules are tested without a server. Nothing here imports Node.
 */
import type { ModelSpec, TrainingSpec } from './schemas/model';
import { canonicalJson } from './canonical-json';

export interface ModelLineage {
  /** The dataset manifest's `fingerprint`: the same images give the same value. */
  datasetFingerprint: string;
  manifestUri: string;
  /** Identifies the test images and labels the accuracy was measured on; only versions that share it are compared. */
  testSplitFingerprint: string;
  /** configFingerprintOf the preprocess, model, training and distributed config. */
  configFingerprint: string;
  model: ModelSpec;
  training: TrainingSpec;
  distributed: unknown | null;
  /** The run that trained the version. */
  workflowId: string;
  runId: string;
}

export interface ModelVersion {
  /** 1, 2, ... per model name. */
  version: number;
  modelUri: string;
  lineage: ModelLineage;
  evaluation: { testAccuracy: number; testLoss: number; reportUri: string };
  compressed: Array<{ name: string; modelUri: string; sizeBytes: number; testAccuracy: number }>;
  /** ISO time, the registry's workflow time. */
  registeredAt: string;
}

export type NewModelVersion = Omit<ModelVersion, 'version' | 'registeredAt'>;

export interface PromotionRecord {
  version: number;
  /** The champion it replaced. */
  previous: number | null;
  at: string;
  kind: 'promote' | 'force' | 'rollback';
  reason: string;
}

export interface RegistryState {
  modelName: string;
  versions: ModelVersion[];
  champion: number | null;
  promotions: PromotionRecord[];
}

export interface PromoteRequest {
  version: number;
  /** The challenger must beat the champion's test accuracy by more than this (a fraction: 0.01 is one point); default 0, strictly better. */
  minImprovement?: number;
  /** Promote whatever the accuracies and test splits; needs a reason, which is recorded. */
  force?: boolean;
  reason?: string;
}

export interface RollbackRequest {
  reason?: string;
}

export interface PromotionDecision {
  promoted: boolean;
  champion: number | null;
  reason: string;
}

/** The registry's workflow ID for a model name: one registry per name. */
export const registryWorkflowId = (modelName: string) => `model-registry-${modelName}`;

export const emptyRegistry = (modelName: string): RegistryState => ({ modelName, versions: [], champion: null, promotions: [] });

/** A rejected update: the validator throws it, so the update leaves no event in history and the caller gets the message. */
export class RegistryRejection extends Error {
  override name = 'RegistryRejection';
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK_64 = (1n << 64n) - 1n;

/** 64-bit FNV-1a over the UTF-16 code units of `text`, as 16 hex digits: pure JavaScript, the same in workflows and activities. */
function fnv1a64(text: string): string {
  let hash = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    hash = ((hash ^ BigInt(unit & 0xff)) * FNV_PRIME) & MASK_64;
    hash = ((hash ^ BigInt(unit >>> 8)) * FNV_PRIME) & MASK_64;
  }
  return hash.toString(16).padStart(16, '0');
}

/**
 * Stable fingerprint of what decides a model besides its data: the preprocess, model, training and distributed config
 * (with defaults filled in, so `{}` and the defaults spelled out agree). Deterministic and usable in workflows.
 */
export function configFingerprintOf(config: { preprocess: unknown; model: unknown; training: unknown; distributed: unknown }): string {
  const { preprocess, model, training, distributed } = config;
  return fnv1a64(canonicalJson({ preprocess, model, training, distributed: distributed ?? null }));
}

function versionOf(state: RegistryState, version: number): ModelVersion {
  const found = state.versions.find((v) => v.version === version);
  if (!found) {
    const known = state.versions.length ? `versions are 1 to ${state.versions.length}` : 'it has no versions yet';
    throw new RegistryRejection(`version: ${state.modelName} has no version ${version} (${known})`);
  }
  return found;
}

/** The version a run registered already: the same run registering the same model again gets it back. */
export function findRegistered(state: RegistryState, candidate: NewModelVersion): ModelVersion | undefined {
  return state.versions.find(
    (v) => v.modelUri === candidate.modelUri && v.lineage.workflowId === candidate.lineage.workflowId && v.lineage.runId === candidate.lineage.runId,
  );
}

const isNonEmptyString = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isFraction = (value: unknown): value is number => typeof value === 'number' && value >= 0 && value <= 1;

export function validateRegister(candidate: NewModelVersion): void {
  const problems: string[] = [];
  if (!isNonEmptyString(candidate?.modelUri)) problems.push('modelUri: required');
  const lineage = candidate?.lineage;
  for (const field of ['datasetFingerprint', 'manifestUri', 'testSplitFingerprint', 'configFingerprint', 'workflowId', 'runId'] as const) {
    if (!isNonEmptyString(lineage?.[field])) problems.push(`lineage.${field}: required`);
  }
  if (!isFraction(candidate?.evaluation?.testAccuracy)) problems.push('evaluation.testAccuracy: must be a number from 0 to 1');
  if (typeof candidate?.evaluation?.testLoss !== 'number') problems.push('evaluation.testLoss: must be a number');
  if (!Array.isArray(candidate?.compressed)) problems.push('compressed: must be an array (empty when nothing was compressed)');
  if (problems.length) throw new RegistryRejection(`registerVersion: ${problems.join('; ')}`);
}

/** Adds the candidate as the next version, or returns the version the same run registered before. */
export function applyRegister(state: RegistryState, candidate: NewModelVersion, at: string): { state: RegistryState; version: ModelVersion } {
  const existing = findRegistered(state, candidate);
  if (existing) return { state, version: existing };
  const version: ModelVersion = { ...candidate, version: state.versions.length + 1, registeredAt: at };
  return { state: { ...state, versions: [...state.versions, version] }, version };
}

const percent = (accuracy: number) => `${(accuracy * 100).toFixed(2)}%`;

/** Why `request` may promote its version, or a RegistryRejection saying why not. */
export function validatePromote(state: RegistryState, request: PromoteRequest): string {
  if (!Number.isInteger(request?.version)) throw new RegistryRejection('version: must be a version number');
  const challenger = versionOf(state, request.version);
  const minImprovement = request.minImprovement ?? 0;
  if (!(minImprovement >= 0 && minImprovement < 1)) throw new RegistryRejection('minImprovement: must be at least 0 and below 1');
  if (state.champion === request.version) throw new RegistryRejection(`version: ${request.version} is already the champion`);
  if (request.force) {
    if (!request.reason?.trim()) throw new RegistryRejection('reason: required with force, and recorded with the promotion');
    return request.reason;
  }
  if (state.champion === null) return `version ${request.version} is the first champion (test accuracy ${percent(challenger.evaluation.testAccuracy)})`;
  const champion = versionOf(state, state.champion);
  if (challenger.lineage.testSplitFingerprint !== champion.lineage.testSplitFingerprint) {
    throw new RegistryRejection(
      `version ${request.version} was tested on a different test split than champion version ${champion.version}, so their accuracies do not compare; promote with force and a reason to replace it anyway`,
    );
  }
  const gain = challenger.evaluation.testAccuracy - champion.evaluation.testAccuracy;
  const by = `${(gain * 100).toFixed(2)} pp`;
  if (!(gain > minImprovement)) {
    throw new RegistryRejection(
      `version ${request.version}'s test accuracy ${percent(challenger.evaluation.testAccuracy)} does not beat champion version ${champion.version}'s ` +
        `${percent(champion.evaluation.testAccuracy)} by more than minImprovement ${minImprovement} (${by})`,
    );
  }
  return `version ${request.version}'s test accuracy ${percent(challenger.evaluation.testAccuracy)} beats champion version ${champion.version}'s ${percent(champion.evaluation.testAccuracy)} by ${by}`;
}

export function applyPromote(state: RegistryState, request: PromoteRequest, at: string): { state: RegistryState; decision: PromotionDecision } {
  const reason = validatePromote(state, request);
  const record: PromotionRecord = { version: request.version, previous: state.champion, at, kind: request.force ? 'force' : 'promote', reason };
  return {
    state: { ...state, champion: request.version, promotions: [...state.promotions, record] },
    decision: { promoted: true, champion: request.version, reason },
  };
}

/** Champions in order of reign, the current one last: promotions push, rollbacks pop. */
export function championStack(promotions: PromotionRecord[]): number[] {
  const stack: number[] = [];
  for (const record of promotions) {
    if (record.kind === 'rollback') stack.pop();
    else stack.push(record.version);
  }
  return stack;
}

/** The champion a rollback returns to, or a RegistryRejection when there is none. */
export function validateRollback(state: RegistryState, request: RollbackRequest): number {
  if (request?.reason !== undefined && typeof request.reason !== 'string') throw new RegistryRejection('reason: must be a string');
  const stack = championStack(state.promotions);
  const previous = stack[stack.length - 2];
  if (previous === undefined) throw new RegistryRejection(`${state.modelName} has no previous champion to roll back to`);
  return previous;
}

export function applyRollback(state: RegistryState, request: RollbackRequest, at: string): { state: RegistryState; decision: PromotionDecision } {
  const version = validateRollback(state, request);
  const reason = request?.reason?.trim() || `rolled back from version ${state.champion}`;
  const record: PromotionRecord = { version, previous: state.champion, at, kind: 'rollback', reason };
  return {
    state: { ...state, champion: version, promotions: [...state.promotions, record] },
    decision: { promoted: true, champion: version, reason },
  };
}

export const championOf = (state: RegistryState): ModelVersion | null =>
  state.champion === null ? null : (state.versions.find((v) => v.version === state.champion) ?? null);
