import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import type { TrainPartitionResult } from '../activities/distributed';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** One activity of a round, from the workflow's history: seconds queued (scheduled to started) and running (started to closed). */
export interface ActivityCost {
  type: string;
  queued: number;
  running: number;
  result: unknown;
}

const seconds = (event: HistoryEvent) => Number(event.eventTime!.seconds) + event.eventTime!.nanos! / 1e9;

/** Every completed activity of a run, in the order they were scheduled. */
export async function activityCosts(handle: WorkflowHandle): Promise<ActivityCost[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const costs: ActivityCost[] = [];
  for (const completed of events) {
    const attributes = completed.activityTaskCompletedEventAttributes;
    if (!attributes) continue;
    const scheduled = byId.get(Number(attributes.scheduledEventId))!;
    const started = byId.get(Number(attributes.startedEventId))!;
    const payload = attributes.result?.payloads?.[0] as Payload | undefined;
    costs.push({
      type: scheduled.activityTaskScheduledEventAttributes!.activityType!.name!,
      queued: seconds(started) - seconds(scheduled),
      running: seconds(completed) - seconds(started),
      result: payload ? defaultPayloadConverter.fromPayload(payload) : undefined,
    });
  }
  return costs;
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
const cell = (values: number[]) => mean(values).toFixed(2);

/**
 * Where a synchronous round's wall time goes, averaged over the rounds after the first (which also builds the
 * initial model) and over partitions: a markdown table of seconds.
 */
export function roundBreakdown(costs: ActivityCost[]): string {
  const rounds = (type: string) => costs.filter((c) => c.type === type);
  const training = rounds('trainPartition');
  const partitions = training.length / rounds('aggregateWeights').length;
  const later = training.slice(partitions);
  const timings = later.map((c) => (c.result as TrainPartitionResult).timings);
  const evaluations = rounds('evaluateModel').slice(1, -1);
  const aggregations = rounds('aggregateWeights').slice(1);
  const rows: [string, number[]][] = [
    ['trainPartition: queued (scheduled to started)', later.map((c) => c.queued)],
    ['trainPartition: running (started to completed)', later.map((c) => c.running)],
    ['- process start and TensorFlow load', timings.map((t) => t.startup)],
    ['- loading the partition and validation split', timings.map((t) => t.load)],
    ['- building the model from the global weights', timings.map((t) => t.build)],
    ['- optimizer steps', timings.map((t) => t.train)],
    ['- scoring the validation split', timings.map((t) => t.validate)],
    ['- storing checkpoints and the model', timings.map((t) => t.store)],
    ['- rest (IPC, process exit, heartbeats)', later.map((c, i) => c.running - Object.values(timings[i]!).reduce((a, b) => a + b, 0))],
    ['aggregateWeights: queued', aggregations.map((c) => c.queued)],
    ['aggregateWeights: running', aggregations.map((c) => c.running)],
    ['evaluateModel (validation): queued', evaluations.map((c) => c.queued)],
    ['evaluateModel (validation): running', evaluations.map((c) => c.running)],
  ];
  return ['| step | seconds |', '|---|---|', ...rows.map(([name, values]) => `| ${name} | ${cell(values)} |`)].join('\n');
}

/** One line per trainPartition activity: where its time went. */
export function trainingLines(costs: ActivityCost[]): string[] {
  return costs
    .filter((c) => c.type === 'trainPartition')
    .map((c) => {
      const { timings } = c.result as TrainPartitionResult;
      return `  running ${c.running.toFixed(2)} s: ${Object.entries(timings).map(([phase, s]) => `${phase} ${s.toFixed(2)}`).join(', ')}`;
    });
}
