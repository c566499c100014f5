import { isGrpcServiceError, ScheduleNotFoundError, WorkflowNotFoundError, type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { mapWithConcurrency } from '../lib/concurrency';
import { referencesInValue, type ReferenceSyntax } from '../lib/gc/references';

export interface TemporalRoots {
  /** Keys of the artifacts the runs Temporal holds reference. */
  references: Set<string>;
  openWorkflowIds: string[];
  /**
   * Start of the oldest open run with work in flight (a workflow task, activities, child workflows, Nexus operations): whatever changed
   * since then, that run may have written and not yet recorded. An idle open run (an entity such as a model registry,
   * waiting for updates) writes nothing, and what it holds is in its history, which is scanned.
   */
  oldestBusyStart: Date | undefined;
  closedRuns: number;
  schedules: number;
}

const { HISTORY_EVENT_FILTER_TYPE_ALL_EVENT, HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT } = temporal.api.enums.v1.HistoryEventFilterType;

/**
 * What every workflow run the namespace still holds references. An open run may read anything its history mentions
 * (inputs, activity results, updates, a continued run's state) or its pending activities' heartbeats carry (the
 * latest checkpoint); a closed run keeps its input and its result; a schedule keeps the input of the runs it starts.
 */
export async function rootsFromTemporal(client: Client, syntax: ReferenceSyntax): Promise<TemporalRoots> {
  const open: WorkflowExecutionInfo[] = [];
  const closed: WorkflowExecutionInfo[] = [];
  for await (const run of client.workflow.list()) (run.status.name === 'RUNNING' ? open : closed).push(run);
  const references = new Set<string>();
  let schedules = 0;
  const busyStarts: number[] = [];
  const scanOpen = async ({ workflowId, runId, startTime }: WorkflowExecutionInfo) => {
    const handle = client.workflow.getHandle(workflowId, runId);
    referencesInValue(syntax, await handle.fetchHistory(), references);
    const { raw } = await handle.describe();
    referencesInValue(syntax, raw, references);
    const busy = raw.pendingWorkflowTask || raw.pendingActivities?.length || raw.pendingChildren?.length || raw.pendingNexusOperations?.length;
    if (busy) busyStarts.push(startTime.getTime());
  };
  // The first event holds the input; the close event the result (or the input a continued run starts with).
  const scanClosed = async ({ workflowId, runId }: WorkflowExecutionInfo) => {
    for (const [filter, pageSize] of [[HISTORY_EVENT_FILTER_TYPE_ALL_EVENT, 1], [HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT, 0]] as const) {
      const { history } = await client.workflowService.getWorkflowExecutionHistory({
        namespace: client.options.namespace,
        execution: { workflowId, runId },
        historyEventFilterType: filter,
        maximumPageSize: pageSize,
      });
      referencesInValue(syntax, history, references);
    }
  };
  await mapWithConcurrency(open, 4, (run) => unlessGone(() => scanOpen(run)));
  await mapWithConcurrency(closed, 8, (run) => unlessGone(() => scanClosed(run)));
  // A schedule starts runs later with the input it holds (a manifest to retrain on, say).
  for await (const schedule of client.schedule.list()) {
    schedules++;
    await unlessGone(async () => referencesInValue(syntax, await client.schedule.getHandle(schedule.scheduleId).describe(), references));
  }
  return {
    references,
    openWorkflowIds: [...new Set(open.map((run) => run.workflowId))],
    oldestBusyStart: busyStarts.length > 0 ? new Date(Math.min(...busyStarts)) : undefined,
    closedRuns: closed.length,
    schedules,
  };
}

const GRPC_NOT_FOUND = 5;

/** Runs `read`, or nothing when its run or schedule is gone (deleted once its retention ended): it holds nothing then. */
async function unlessGone(read: () => Promise<unknown>): Promise<void> {
  try {
    await read();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError || err instanceof ScheduleNotFoundError || (isGrpcServiceError(err) && err.code === GRPC_NOT_FOUND)) return;
    throw err;
  }
}
