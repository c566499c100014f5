/**
 * What `cli schedule create` is asked for, checked before anything reaches Temporal: durations (`10s`, `1d`, `1h30m`),
 * Unix cron strings and overlap policy names. Pure: no client, no I/O.
 */

/** A command-line mistake; the message names the option. */
export class ScheduleArgumentError extends Error {
  override name = 'ScheduleArgumentError';
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** `90s`, `10m`, `1h30m`, `1d` (units ms, s, m, h, d) as milliseconds. */
export function parseDuration(text: string, option: string): number {
  if (!DURATION.test(text)) {
    throw new ScheduleArgumentError(`${option}: "${text}" is not a duration; write a number and a unit (ms, s, m, h, d), such as 10s, 1h30m or 1d`);
  }
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return Math.round(ms);
}

/** The shortest unit-suffixed form of a whole number of milliseconds: 86400000 is `1d`, 5400000 is `1h30m`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let text = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * UNIT_MS[unit];
  }
  return text;
}

interface CronField {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] as const;
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;
const CRON_FIELDS: readonly CronField[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  // 0 and 7 are both Sunday, as in Unix cron.
  { name: 'day of week', min: 0, max: 7, names: WEEKDAYS },
];
/** The shorthands Temporal's cron parser accepts besides five fields. */
const CRON_MACROS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];

function cronValue(text: string, field: CronField): number {
  const named = field.names?.indexOf(text.toUpperCase()) ?? -1;
  if (named !== -1) return field.names === MONTHS ? named + 1 : named;
  if (!/^\d+$/.test(text)) throw new Error(`"${text}" is not a number${field.names ? ` or a name (${field.names.join(', ')})` : ''}`);
  const value = Number(text);
  if (value < field.min || value > field.max) throw new Error(`${value} is outside ${field.min}-${field.max}`);
  return value;
}

function checkCronItem(item: string, field: CronField): void {
  const [range, step, extra] = item.split('/');
  if (extra !== undefined || range === '') throw new Error(`"${item}" is not a value, a range or a step`);
  if (step !== undefined && !/^[1-9]\d*$/.test(step)) throw new Error(`the step in "${item}" is not a positive whole number`);
  if (range === '*' || (range === '?' && field.names === WEEKDAYS) || (range === '?' && field.name === 'day of month')) return;
  const [first, last, more] = range!.split('-');
  if (more !== undefined) throw new Error(`"${range}" is not a range`);
  const start = cronValue(first!, field);
  if (last !== undefined && cronValue(last, field) < start) throw new Error(`the range "${range}" ends before it starts`);
}

/**
 * Checks a Unix cron string (minute, hour, day of month, month, day of week; `*`, values, names, `a-b` ranges, `/n`
 * steps, lists) or one of Temporal's shorthands (`@daily`, `@hourly`, ...); returns it with single spaces.
 */
export function checkCron(text: string, option: string): string {
  const cron = text.trim().split(/\s+/).join(' ');
  if (CRON_MACROS.includes(cron.toLowerCase())) return cron.toLowerCase();
  const fields = cron.split(' ');
  if (fields.length !== CRON_FIELDS.length) {
    throw new ScheduleArgumentError(
      `${option}: "${text}" has ${fields.length} field(s); a cron string has 5 (minute hour day-of-month month day-of-week, such as "0 2 * * *"), or is one of ${CRON_MACROS.join(', ')}`,
    );
  }
  CRON_FIELDS.forEach((field, i) => {
    for (const item of fields[i]!.split(',')) {
      try {
        checkCronItem(item, field);
      } catch (err) {
        throw new ScheduleArgumentError(`${option}: ${field.name} field "${fields[i]}": ${(err as Error).message}`);
      }
    }
  });
  return cron;
}

export const OVERLAP_POLICIES = ['skip', 'buffer-one', 'buffer-all', 'cancel-other', 'terminate-other', 'allow-all'] as const;
export type OverlapPolicyName = (typeof OVERLAP_POLICIES)[number];
/** The names Temporal's client takes (`ScheduleOverlapPolicy`). */
export type OverlapPolicy = 'SKIP' | 'BUFFER_ONE' | 'BUFFER_ALL' | 'CANCEL_OTHER' | 'TERMINATE_OTHER' | 'ALLOW_ALL';

/** `buffer-one` as `BUFFER_ONE`. */
export function parseOverlapPolicy(text: string, option: string): OverlapPolicy {
  if (!(OVERLAP_POLICIES as readonly string[]).includes(text)) {
    throw new ScheduleArgumentError(`${option}: "${text}" is not an overlap policy; use one of ${OVERLAP_POLICIES.join(', ')}`);
  }
  return text.toUpperCase().replace(/-/g, '_') as OverlapPolicy;
}

/** `BUFFER_ONE` as `buffer-one`. */
export const overlapPolicyName = (policy: OverlapPolicy): OverlapPolicyName => policy.toLowerCase().replace(/_/g, '-') as OverlapPolicyName;

/** Positional arguments and `--name value` / `--flag` options of a command line. */
export interface CommandLine {
  positional: string[];
  values: Map<string, string>;
  flags: Set<string>;
}

/** Splits a command line, refusing options not in `values` or `flags` and value options given without a value. */
export function parseCommandLine(argv: readonly string[], options: { values?: readonly string[]; flags?: readonly string[] }): CommandLine {
  const line: CommandLine = { positional: [], values: new Map(), flags: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) line.positional.push(arg);
    else if (options.flags?.includes(arg)) line.flags.add(arg);
    else if (options.values?.includes(arg)) {
      const value = argv[++i];
      if (value === undefined) throw new ScheduleArgumentError(`${arg}: needs a value`);
      line.values.set(arg, value);
    } else {
      const known = [...(options.values ?? []), ...(options.flags ?? [])];
      throw new ScheduleArgumentError(`${arg}: unknown option${known.length ? `; this command takes ${known.join(', ')}` : ''}`);
    }
  }
  return line;
}

/** What a new schedule is: when it fires and how it treats overlaps, missed firings and jitter. */
export interface ScheduleRequest {
  scheduleId: string;
  /** Exactly one of `everyMs` and `cron` is set. */
  everyMs?: number;
  cron?: string;
  overlap: OverlapPolicy;
  catchupWindowMs?: number;
  jitterMs?: number;
  paused: boolean;
  /** The workflow input as given (its defaults are filled in by each run). */
  input: unknown;
}

export const CREATE_VALUES = ['--every', '--cron', '--input', '--overlap', '--catchup-window', '--jitter'] as const;
export const CREATE_FLAGS = ['--paused'] as const;

/** `create <id> (--every 1d | --cron '0 2 * * *') [--input '<json>'] [--overlap skip] [--catchup-window 1h] [--jitter 5m] [--paused]`, after `create`. */
export function parseScheduleCreate(argv: readonly string[]): ScheduleRequest {
  const { positional, values, flags } = parseCommandLine(argv, { values: CREATE_VALUES, flags: CREATE_FLAGS });
  const [scheduleId, ...extra] = positional;
  if (!scheduleId) throw new ScheduleArgumentError('schedule create: needs a schedule ID');
  if (extra.length) throw new ScheduleArgumentError(`schedule create: unexpected argument "${extra[0]}"`);
  const every = values.get('--every');
  const cron = values.get('--cron');
  if ((every === undefined) === (cron === undefined)) throw new ScheduleArgumentError('schedule create: give exactly one of --every and --cron');
  const request: ScheduleRequest = {
    scheduleId,
    overlap: parseOverlapPolicy(values.get('--overlap') ?? 'skip', '--overlap'),
    paused: flags.has('--paused'),
    input: parseJsonInput(values.get('--input') ?? '{}'),
  };
  if (every !== undefined) {
    request.everyMs = parseDuration(every, '--every');
    if (request.everyMs < 1000 || request.everyMs % 1000 !== 0) throw new ScheduleArgumentError(`--every: "${every}" must be a whole number of seconds, at least 1s`);
  }
  if (cron !== undefined) request.cron = checkCron(cron, '--cron');
  const catchupWindow = values.get('--catchup-window');
  if (catchupWindow !== undefined) {
    request.catchupWindowMs = parseDuration(catchupWindow, '--catchup-window');
    // Temporal raises anything shorter to 10 seconds; refusing it says so instead of storing something else.
    if (request.catchupWindowMs < 10_000) throw new ScheduleArgumentError(`--catchup-window: "${catchupWindow}" is under Temporal's minimum of 10s`);
  }
  const jitter = values.get('--jitter');
  if (jitter !== undefined) request.jitterMs = parseDuration(jitter, '--jitter');
  return request;
}

function parseJsonInput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ScheduleArgumentError(`--input: not JSON (${(err as Error).message})`);
  }
}

/** An ISO 8601 time for `--start` / `--end`. */
export function parseTime(text: string, option: string): Date {
  const time = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(time.getTime())) throw new ScheduleArgumentError(`${option}: "${text}" is not an ISO 8601 time such as 2026-11-01T00:00:00Z`);
  return time;
}
