/**
 * `cli schedule ...`: Temporal Schedules that start mlPipeline, for retraining on a timetable.
 *
 *   schedule create <id> (--every 1d | --cron '0 2 * * *') [--input '<json>'] [--overlap skip] [--catchup-window 1h] [--jitter 5m] [--paused]
 *   schedule list | describe <id> | pause <id> [--note '…'] | unpause <id> [--note '…'] | trigger <id> | delete <id>
 *   schedule backfill <id> --start <iso time> --end <iso time> [--overlap buffer-all]
 */
import type { Client, ScheduleDescription, ScheduleOptions } from '@temporalio/client';
import { formatDuration, overlapPolicyName, parseCommandLine, parseOverlapPolicy, parseScheduleCreate, parseTime, ScheduleArgumentError, type OverlapPolicy, type ScheduleRequest } from '../lib/schedule-spec';
import { mlPipelineInputSchema } from '../lib/schemas/ml-pipeline';
import { parseWorkflowInput } from '../lib/validate';
import { mlPipeline } from '../workflows';

export const SCHEDULE_USAGE = [
  "schedule create <id> (--every 1d | --cron '0 2 * * *') [--input '<mlPipeline input JSON>'] [--overlap skip|buffer-one|buffer-all|cancel-other|terminate-other|allow-all] [--catchup-window 1h] [--jitter 5m] [--paused]",
  'schedule list',
  'schedule describe <id>',
  "schedule pause <id> [--note '<why>']",
  "schedule unpause <id> [--note '<why>']",
  'schedule trigger <id>',
  'schedule backfill <id> --start <ISO time> --end <ISO time> [--overlap buffer-all]',
  'schedule delete <id>',
].join('\n');

/** The Schedule for a checked request; its action starts mlPipeline on the workflows' queue with the input as given. */
export function scheduleOptionsOf(request: ScheduleRequest): ScheduleOptions {
  return {
    scheduleId: request.scheduleId,
    spec: {
      ...(request.everyMs !== undefined ? { intervals: [{ every: request.everyMs }] } : { cronExpressions: [request.cron!] }),
      ...(request.jitterMs !== undefined && { jitter: request.jitterMs }),
    },
    // Each run's workflow ID is this followed by the time it was scheduled for, which Temporal appends.
    action: { type: 'startWorkflow', workflowType: mlPipeline, taskQueue: 'ml-pipeline', workflowId: request.scheduleId, args: [request.input] },
    policies: { overlap: request.overlap, ...(request.catchupWindowMs !== undefined && { catchupWindow: request.catchupWindowMs }) },
    state: { paused: request.paused, ...(request.paused && { note: 'created paused' }) },
  };
}

/** A schedule as `describe` prints it: durations and policies in the words `create` takes. */
export function describeSchedule(description: ScheduleDescription) {
  const { spec, action, policies, state, info } = description;
  return {
    scheduleId: description.scheduleId,
    every: spec.intervals?.map((interval) => formatDuration(interval.every)),
    calendars: spec.calendars?.length ? spec.calendars : undefined,
    jitter: formatDuration(spec.jitter ?? 0),
    overlap: overlapPolicyName(policies.overlap as OverlapPolicy),
    catchupWindow: formatDuration(policies.catchupWindow),
    paused: state.paused,
    note: state.note || undefined,
    workflow: { type: action.workflowType, taskQueue: action.taskQueue, workflowIdPrefix: action.workflowId, input: action.args?.[0] },
    actionsTaken: info.numActionsTaken,
    skippedForOverlap: info.numActionsSkippedOverlap,
    missedCatchupWindow: info.numActionsMissedCatchupWindow,
    running: info.runningActions.map((run) => run.workflow.workflowId),
    recent: info.recentActions.map((run) => ({ scheduledAt: run.scheduledAt.toISOString(), takenAt: run.takenAt.toISOString(), workflowId: run.action.workflow.workflowId })),
    next: info.nextActionTimes.map((time) => time.toISOString()),
  };
}

function scheduleIdOf(command: string, positional: string[]): string {
  const [id, extra] = positional;
  if (!id) throw new ScheduleArgumentError(`schedule ${command}: needs a schedule ID`);
  if (extra !== undefined) throw new ScheduleArgumentError(`schedule ${command}: unexpected argument "${extra}"`);
  return id;
}

/** Runs `schedule <command> ...` (argv after `schedule`), writing what it has to say through `print`. */
export async function runScheduleCommand(client: Client, argv: readonly string[], print: (line: string) => void): Promise<void> {
  const [command = '', ...rest] = argv;
  switch (command) {
    case 'create': {
      const request = parseScheduleCreate(rest);
      // A bad input is refused now, naming the field, rather than failing every firing.
      parseWorkflowInput('mlPipeline', mlPipelineInputSchema, request.input);
      const handle = await client.schedule.create(scheduleOptionsOf(request));
      const { info, state } = await handle.describe();
      const next = info.nextActionTimes[0]?.toISOString() ?? 'none';
      print(`Created schedule ${handle.scheduleId}${state.paused ? ' (paused)' : ''}; next run ${state.paused ? 'when unpaused' : next}`);
      return;
    }
    case 'list': {
      parseCommandLine(rest, {});
      for await (const summary of client.schedule.list()) {
        const every = summary.spec?.intervals?.map((i) => `every ${formatDuration(i.every)}`) ?? [];
        const calendars = summary.spec?.calendars?.length ? ['calendar'] : [];
        const last = summary.info.recentActions.at(-1)?.action.workflow.workflowId ?? 'none yet';
        const next = summary.info.nextActionTimes[0]?.toISOString() ?? 'none';
        print(`${summary.scheduleId}\t${[...every, ...calendars].join(', ')}\t${summary.state.paused ? 'paused' : `next ${next}`}\tlast ${last}`);
      }
      return;
    }
    case 'describe': {
      const id = scheduleIdOf(command, parseCommandLine(rest, {}).positional);
      print(JSON.stringify(describeSchedule(await client.schedule.getHandle(id).describe()), null, 2));
      return;
    }
    case 'pause':
    case 'unpause': {
      const { positional, values } = parseCommandLine(rest, { values: ['--note'] });
      const handle = client.schedule.getHandle(scheduleIdOf(command, positional));
      await (command === 'pause' ? handle.pause(values.get('--note')) : handle.unpause(values.get('--note')));
      print(`${command === 'pause' ? 'Paused' : 'Unpaused'} schedule ${handle.scheduleId}`);
      return;
    }
    case 'trigger': {
      const handle = client.schedule.getHandle(scheduleIdOf(command, parseCommandLine(rest, {}).positional));
      await handle.trigger();
      print(`Triggered schedule ${handle.scheduleId}: a run starts now, subject to its overlap policy`);
      return;
    }
    case 'backfill': {
      const { positional, values } = parseCommandLine(rest, { values: ['--start', '--end', '--overlap'] });
      const handle = client.schedule.getHandle(scheduleIdOf(command, positional));
      const start = parseTime(values.get('--start') ?? '', '--start');
      const end = parseTime(values.get('--end') ?? '', '--end');
      if (end <= start) throw new ScheduleArgumentError('--end: must be after --start');
      const overlap = values.has('--overlap') ? parseOverlapPolicy(values.get('--overlap')!, '--overlap') : undefined;
      await handle.backfill({ start, end, overlap });
      print(`Backfilling schedule ${handle.scheduleId} from ${start.toISOString()} to ${end.toISOString()}`);
      return;
    }
    case 'delete': {
      const handle = client.schedule.getHandle(scheduleIdOf(command, parseCommandLine(rest, {}).positional));
      await handle.delete();
      print(`Deleted schedule ${handle.scheduleId}; runs it started are not affected`);
      return;
    }
    default:
      throw new ScheduleArgumentError(`schedule: unknown command "${command}"; the commands are\n${SCHEDULE_USAGE}`);
  }
}
