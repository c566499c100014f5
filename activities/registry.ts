import { Context } from '@temporalio/activity';
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { artifactStore } from '../lib/artifacts';
import { readManifest } from '../lib/datasets/manifest';
import { testSplitFingerprintOf } from '../lib/datasets/test-split';
import { registryWorkflowId, type ModelLineage, type ModelVersion, type NewModelVersion, type PromoteRequest, type PromotionDecision } from '../lib/registry';
import { championQuery, promoteUpdate, registerVersionUpdate } from '../workflows/definitions';

/** A version as a pipeline knows it: the registering activity adds the fingerprints it reads from the manifest. */
export interface RegisterModelVersionInput {
  modelName: string;
  version: Omit<NewModelVersion, 'lineage'> & { lineage: Omit<ModelLineage, 'datasetFingerprint' | 'testSplitFingerprint'> };
}

export interface RequestPromotionInput {
  modelName: string;
  request: PromoteRequest;
}

/** Starts the model's registry if it is not running yet (update-with-start), so a registry exists once a model does. */
function startRegistry(modelName: string) {
  return new WithStartWorkflowOperation('modelRegistry', {
    workflowId: registryWorkflowId(modelName),
    taskQueue: 'ml-pipeline',
    args: [{ modelName }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/** One update ID per activity, the same on every attempt: a retry after the update went through gets its result back. */
function updateIdOf(kind: string): string | undefined {
  const { workflowExecution, activityId } = Context.current().info;
  return workflowExecution && `${kind}-${workflowExecution.workflowId}-${workflowExecution.runId}-${activityId}`;
}

export interface RegisteredModelVersion {
  version: ModelVersion;
  /** The registry's champion just after. */
  champion: number | null;
}

/** Registers a trained model as the next version of its name, starting the registry if needed. */
export async function registerModelVersion(input: RegisterModelVersionInput): Promise<RegisteredModelVersion> {
  const store = artifactStore();
  const manifest = await readManifest(store, input.version.lineage.manifestUri);
  const version: NewModelVersion = {
    ...input.version,
    lineage: { ...input.version.lineage, datasetFingerprint: manifest.fingerprint, testSplitFingerprint: await testSplitFingerprintOf(store, manifest) },
  };
  const client = Context.current().client;
  const registered = await client.workflow.executeUpdateWithStart(registerVersionUpdate, {
    args: [version],
    updateId: updateIdOf('register'),
    startWorkflowOperation: startRegistry(input.modelName),
  });
  return { version: registered, champion: await championOf(client, input.modelName) };
}

async function championOf(client: Client, modelName: string): Promise<number | null> {
  const champion = await client.workflow.getHandle(registryWorkflowId(modelName)).query(championQuery);
  return champion?.version ?? null;
}

/** Asks the registry to promote a version. A rejection is an answer, not a failure: the decision says why. */
export async function requestPromotion(input: RequestPromotionInput): Promise<PromotionDecision> {
  const client = Context.current().client;
  try {
    return await client.workflow.executeUpdateWithStart(promoteUpdate, {
      args: [input.request],
      updateId: updateIdOf('promote'),
      startWorkflowOperation: startRegistry(input.modelName),
    });
  } catch (err) {
    if (!(err instanceof WorkflowUpdateFailedError)) throw err;
    const champion = await championOf(client, input.modelName);
    return { promoted: champion === input.request.version, champion, reason: err.cause?.message ?? err.message };
  }
}

/** The champion of a model's registry, or null when the model has no registry or no champion yet. */
export async function currentChampion(modelName: string): Promise<ModelVersion | null> {
  try {
    return await Context.current().client.workflow.getHandle(registryWorkflowId(modelName)).query(championQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}
