import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { registryWorkflowId, type ModelVersion } from '../lib/registry';
import { championQuery } from '../workflows/definitions';

/** The champion of a model's registry, or null when the model has no registry or no champion yet. */
export async function currentChampion(modelName: string): Promise<ModelVersion | null> {
  try {
    return await Context.current().client.workflow.getHandle(registryWorkflowId(modelName)).query(championQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}
