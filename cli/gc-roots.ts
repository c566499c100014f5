import { isGrpcServiceError, ScheduleNotFoundError, WorkflowNotFoundError, type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import type { Payload, PayloadCodec } from '@temporalio/common';
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
  const codecs = client.options.loadedDataConverter.payloadCodecs;
  // Encrypted payloads are scanned as the codec decodes them; their ciphertext names nothing.
  const scan = async (value: unknown) => {
    referencesInValue(syntax, value, references);
    if (codecs.length > 0) referencesInValue(syntax, await decodedPayloadsIn(value, codecs), references);
  };
  let schedules = 0;
  const busyStarts: number[] = [];
  const scanOpen = async ({ workflowId, runId, startTime }: WorkflowExecutionInfo) => {
    const handle = client.workflow.getHandle(workflowId, runId);
    await scan(await handle.fetchHistory());
    const { raw } = await handle.describe();
    await scan(raw);
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
      await scan(history);
    }
  };
  await mapWithConcurrency(open, 4, (run) => unlessGone(() => scanOpen(run)));
  await mapWithConcurrency(closed, 8, (run) => unlessGone(() => scanClosed(run)));
  // A schedule starts runs later with the input it holds (a manifest to retrain on, say).
  for await (const schedule of client.schedule.list()) {
    schedules++;
    await unlessGone(async () => scan(await client.schedule.getHandle(schedule.scheduleId).describe()));
  }
  return {
    references,
    openWorkflowIds: [...new Set(open.map((run) => run.workflowId))],
    oldestBusyStart: busyStarts.length > 0 ? new Date(Math.min(...busyStarts)) : undefined,
    closedRuns: closed.length,
    schedules,
  };
}

/** Every payload found in `value` (an object with `metadata` and `data`), decoded by the codecs in reverse order. */
async function decodedPayloadsIn(value: unknown, codecs: PayloadCodec[]): Promise<Payload[]> {
  const payloads: Payload[] = [];
  const pending: unknown[] = [value];
  const seen = new Set<unknown>();
  while (pending.length > 0) {
    const current = pending.pop();
    if (current === null || typeof current !== 'object' || seen.has(current) || current instanceof Uint8Array) continue;
    seen.add(current);
    const candidate = current as Partial<Payload>;
    if (candidate.metadata && typeof candidate.metadata === 'object' && candidate.data instanceof Uint8Array) payloads.push(candidate as Payload);
    else pending.push(...Object.values(current));
  }
  let decoded = payloads;
  for (const codec of [...codecs].reverse()) decoded = await codec.decode(decoded);
  return decoded;
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
