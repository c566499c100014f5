import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import type { TrainProgress } from '../lib/training/train-job';
import { trainingProgressQuery } from '../workflows/definitions';
import type { TrainModelProgress } from '../workflows/train-model';

export interface LiveTrainingProgress extends TrainModelProgress {
  /** The training activity's latest heartbeat while it runs: epoch, batch, loss, checkpoint. */
  current: TrainProgress | null;
  /** The training activity's attempt (above 1 after a retry). */
  attempt: number;
}

/**
 * A trainModel run's live progress: what the workflow knows (its `progress` query) and the training activity's
 * latest heartbeat details (from describe(), decoded with the client's data converter). Undefined while no workflow
 * with that ID exists yet (a pipeline that has not started its training child).
 */
export async function trainingProgress(client: Client, workflowId: string): Promise<LiveTrainingProgress | undefined> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const [known, description] = await Promise.all([handle.query(trainingProgressQuery), handle.describe()]);
    const training = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'runTraining');
    const current = training?.heartbeatDetails?.payloads?.length
      ? await decodeFromPayloadsAtIndex<TrainProgress>(client.options.loadedDataConverter, 0, training.heartbeatDetails.payloads)
      : null;
    return { ...known, current, attempt: training?.attempt ?? 1 };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}
