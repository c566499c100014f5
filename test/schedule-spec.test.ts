import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkCron, formatDuration, overlapPolicyName, parseDuration, parseOverlapPolicy, parseScheduleCreate, parseTime, ScheduleArgumentError } from '../lib/schedule-spec';

/** Asserts `run` throws a ScheduleArgumentError whose message matches every pattern. */
function refused(run: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof ScheduleArgumentError, String(err));
    for (const pattern of patterns) assert.match(err.message, pattern);
    return true;
  });
}

describe('schedule durations', () => {
  it('reads units and sums compound durations', () => {
    assert.equal(parseDuration('10s', '--every'), 10_000);
    assert.equal(parseDuration('1d', '--every'), 86_400_000);
    assert.equal(parseDuration('1h30m', '--every'), 5_400_000);
    assert.equal(parseDuration('1.5h', '--every'), 5_400_000);
    assert.equal(parseDuration('250ms', '--jitter'), 250);
  });

  it('refuses what is not a duration, naming the option', () => {
    for (const text of ['', '10', 'd', '1 d', '5x', '-1h', '1h 30m']) refused(() => parseDuration(text, '--jitter'), /^--jitter: /);
  });

  it('prints milliseconds in the largest units', () => {
    assert.equal(formatDuration(86_400_000), '1d');
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(10_000), '10s');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(31_536_000_000), '365d');
  });
});

describe('cron strings', () => {
  it('accepts five fields with values, names, ranges, steps and lists, and the shorthands', () => {
    assert.equal(checkCron('0 2 * * *', '--cron'), '0 2 * * *');
    assert.equal(checkCron(' 30  12 * *  Fri ', '--cron'), '30 12 * * Fri');
    assert.equal(checkCron('*/15 0-6,22 1,15 JAN-MAR MON-FRI', '--cron'), '*/15 0-6,22 1,15 JAN-MAR MON-FRI');
    assert.equal(checkCron('0 0 ? * 7', '--cron'), '0 0 ? * 7');
    assert.equal(checkCron('@Daily', '--cron'), '@daily');
  });

  it('refuses a wrong field count, an out-of-range value, a bad range or step, naming the field', () => {
    refused(() => checkCron('0 2 * *', '--cron'), /^--cron: /, /4 field/, /minute hour day-of-month month day-of-week/);
    refused(() => checkCron('0 2 * * * *', '--cron'), /6 field/);
    refused(() => checkCron('60 2 * * *', '--cron'), /minute field "60": 60 is outside 0-59/);
    refused(() => checkCron('0 24 * * *', '--cron'), /hour field/);
    refused(() => checkCron('0 2 0 * *', '--cron'), /day of month field "0": 0 is outside 1-31/);
    refused(() => checkCron('0 2 * 13 *', '--cron'), /month field/);
    refused(() => checkCron('0 2 * * 8', '--cron'), /day of week field/);
    refused(() => checkCron('0 2 * FOO *', '--cron'), /month field "FOO": "FOO" is not a number or a name \(JAN/);
    refused(() => checkCron('0 5-2 * * *', '--cron'), /range "5-2" ends before it starts/);
    refused(() => checkCron('*/0 2 * * *', '--cron'), /step in "\*\/0"/);
    refused(() => checkCron('0 ? * * *', '--cron'), /hour field "\?"/);
    refused(() => checkCron('@every 5m', '--cron'), /2 field/);
  });
});

describe('overlap policies', () => {
  it('maps every command-line name to the client name and back', () => {
    assert.equal(parseOverlapPolicy('skip', '--overlap'), 'SKIP');
    assert.equal(parseOverlapPolicy('terminate-other', '--overlap'), 'TERMINATE_OTHER');
    for (const name of ['skip', 'buffer-one', 'buffer-all', 'cancel-other', 'terminate-other', 'allow-all']) {
      assert.equal(overlapPolicyName(parseOverlapPolicy(name, '--overlap')), name);
    }
    refused(() => parseOverlapPolicy('SKIP', '--overlap'), /^--overlap: "SKIP" is not an overlap policy; use one of skip, buffer-one/);
  });
});

describe('schedule create arguments', () => {
  it('defaults to skip, not paused, Temporal\'s catch-up window and jitter, and {} as input', () => {
    assert.deepEqual(parseScheduleCreate(['nightly', '--every', '1d']), { scheduleId: 'nightly', everyMs: 86_400_000, overlap: 'SKIP', paused: false, input: {} });
  });

  it('takes a cron string, every policy option and the input as JSON', () => {
    const request = parseScheduleCreate([
      'nightly', '--cron', '0 2 * * *', '--input', '{"training": {"epochs": 2}}', '--overlap', 'buffer-one', '--catchup-window', '1h', '--jitter', '5m', '--paused',
    ]);
    assert.deepEqual(request, {
      scheduleId: 'nightly', cron: '0 2 * * *', overlap: 'BUFFER_ONE', catchupWindowMs: 3_600_000, jitterMs: 300_000, paused: true, input: { training: { epochs: 2 } },
    });
  });

  it('refuses missing or doubled timing, bad values and unknown options, naming them', () => {
    refused(() => parseScheduleCreate(['--every', '1d']), /needs a schedule ID/);
    refused(() => parseScheduleCreate(['a']), /exactly one of --every and --cron/);
    refused(() => parseScheduleCreate(['a', '--every', '1d', '--cron', '@daily']), /exactly one of --every and --cron/);
    refused(() => parseScheduleCreate(['a', '--every', '500ms']), /^--every: .*at least 1s/);
    refused(() => parseScheduleCreate(['a', '--every', '1500ms']), /^--every: .*whole number of seconds/);
    refused(() => parseScheduleCreate(['a', '--every', '1d', '--catchup-window', '5s']), /^--catchup-window: .*minimum of 10s/);
    refused(() => parseScheduleCreate(['a', '--every', '1d', '--input', '{training:']), /^--input: not JSON/);
    refused(() => parseScheduleCreate(['a', '--every', '1d', '--overlap', 'never']), /^--overlap: /);
    refused(() => parseScheduleCreate(['a', '--every', '1d', '--interval', '5m']), /^--interval: unknown option; this command takes --every, --cron/);
    refused(() => parseScheduleCreate(['a', '--every']), /^--every: needs a value/);
    refused(() => parseScheduleCreate(['a', 'b', '--every', '1d']), /unexpected argument "b"/);
  });

  it('reads ISO times for backfills', () => {
    assert.equal(parseTime('2026-11-01T00:00:00Z', '--start').toISOString(), '2026-11-01T00:00:00.000Z');
    refused(() => parseTime('yesterday', '--start'), /^--start: /);
    refused(() => parseTime('2026-13-45', '--end'), /^--end: /);
  });
});
