import { allHandlersFinished, condition, continueAsNew, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { applyPromote, applyRegister, applyRollback, championOf, emptyRegistry, validatePromote, validateRegister, validateRollback, type RegistryState } from '../lib/registry';
import { modelNameSchema } from '../lib/schemas/train-model';
import { ML_MODEL, ML_STAGE } from '../lib/search-attributes';
import { invalidInput } from '../lib/validate';
import { championQuery, promoteUpdate, registerVersionUpdate, registryStateQuery, rollbackUpdate, versionsQuery } from './definitions';

export interface ModelRegistryInput {
  modelName: string;
  /** The state handed on by continue-as-new. */
  state?: RegistryState;
  /** Accepted updates per run before it continues as new (sooner when Temporal suggests it). */
  updatesPerRun?: number;
}

const DEFAULT_UPDATES_PER_RUN = 500;

/**
 * One model name's registry: its versions with their lineage, the champion and every promotion. It lives as long as
 * the model: updates change it (each validated first, so a rejected one leaves nothing in history), queries read it,
 * and it continues as new, carrying the state, every `updatesPerRun` accepted updates.
 */
export async function modelRegistry(input: ModelRegistryInput): Promise<never> {
  if (!modelNameSchema.safeParse(input?.modelName).success) throw invalidInput('modelName', 'use 1-63 letters, digits, "_", "." or "-"');
  let state = input.state ?? emptyRegistry(input.modelName);
  const updatesPerRun = input.updatesPerRun ?? DEFAULT_UPDATES_PER_RUN;
  let updates = 0;
  const now = () => new Date().toISOString();
  upsertSearchAttributes([
    { key: ML_MODEL, value: state.modelName },
    { key: ML_STAGE, value: 'registry' },
  ]);

  setHandler(
    registerVersionUpdate,
    (candidate) => {
      const registered = applyRegister(state, candidate, now());
      state = registered.state;
      updates++;
      return registered.version;
    },
    { validator: validateRegister },
  );
  setHandler(
    promoteUpdate,
    (request) => {
      const promoted = applyPromote(state, request, now());
      state = promoted.state;
      updates++;
      return promoted.decision;
    },
    { validator: (request) => void validatePromote(state, request) },
  );
  setHandler(
    rollbackUpdate,
    (request) => {
      const rolledBack = applyRollback(state, request, now());
      state = rolledBack.state;
      updates++;
      return rolledBack.decision;
    },
    { validator: (request) => void validateRollback(state, request) },
  );
  setHandler(championQuery, () => championOf(state));
  setHandler(versionsQuery, () => state.versions);
  setHandler(registryStateQuery, () => state);

  await condition(() => updates >= updatesPerRun || workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  return continueAsNew<typeof modelRegistry>({ modelName: state.modelName, state, updatesPerRun: input.updatesPerRun });
}
