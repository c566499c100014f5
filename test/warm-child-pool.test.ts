import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { ChildTaskError, WarmChildPool } from '../lib/child-task';
import { withChildResourceTally } from '../lib/resource-usage';
import type { WarmProbeInput } from './helpers/warm-child-task';
import { waitFor } from './helpers/wait';

const probe = join(__dirname, 'helpers', 'warm-child-task.js');
type Answer = { pid: number; loads: number };
const isRunning = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('warm child processes (real child processes)', () => {
  it('serve task after task in one process that keeps its cache; a killed idle one is replaced', async () => {
    const pool = new WarmChildPool(probe, { maxIdle: 1, idleSeconds: 60 });
    const run = (key: string) => pool.run<WarmProbeInput, number, Answer>({ key, waitMs: 0 });
    const first = await run('a');
    const second = await run('a');
    const third = await run('b');
    assert.equal(second.pid, first.pid, 'the same process served the second task');
    assert.deepEqual([first.loads, second.loads, third.loads], [1, 1, 2], 'key a loaded once, then served from the cache');

    process.kill(first.pid, 'SIGKILL');
    await waitFor('the killed child to leave the pool', 10_000, () => (pool.idleProcesses.length === 0 ? true : undefined));
    const replaced = await run('a');
    assert.notEqual(replaced.pid, first.pid);
    assert.equal(replaced.loads, 1);
    pool.idleProcesses.forEach((child) => child.kill('SIGKILL'));
  });

  it('keep no more than the cache budget once a task ends, though a task may use more while it runs', async () => {
    const pool = new WarmChildPool(probe, { env: { TEMPORAL_ML_WARM_CHILD_CACHE_MB: '1' }, maxIdle: 1, idleSeconds: 60 });
    const run = (key: string, bytes: number) => pool.run<WarmProbeInput, number, Answer>({ key, bytes, waitMs: 0 });
    const answers = [await run('large', 2 * 1024 * 1024), await run('large', 2 * 1024 * 1024), await run('small', 1000), await run('small', 1000)];
    assert.ok(answers.every((a) => a.pid === answers[0]!.pid), 'one process served every task');
    assert.deepEqual(
      answers.map((a) => a.loads),
      [1, 2, 3, 3],
      'the value over the budget went when its task ended and was loaded again; the small one stayed',
    );
    pool.idleProcesses.forEach((child) => child.kill('SIGKILL'));
  });

  it('count each task the CPU time it used, not the process\'s since it started', async () => {
    const pool = new WarmChildPool(probe, { maxIdle: 1, idleSeconds: 60 });
    const tallied = async () => {
      const outcome = await withChildResourceTally(() => pool.run<WarmProbeInput, number, Answer>({ key: 'a', waitMs: 0, burnCpuMs: 300 }));
      assert.ok('result' in outcome);
      return { pid: outcome.result.pid, cpuSeconds: outcome.tally.cpuSeconds };
    };
    const first = await tallied();
    const second = await tallied();
    assert.equal(second.pid, first.pid, 'the same process served both');
    // Each burned 0.3 s of CPU; counted since the process started, the second would be 0.6 s and more.
    assert.ok(first.cpuSeconds >= 0.3 && second.cpuSeconds >= 0.3 && second.cpuSeconds < 0.5, `CPU counted: ${first.cpuSeconds} s, then ${second.cpuSeconds} s`);
    pool.idleProcesses.forEach((child) => child.kill('SIGKILL'));
  });

  it('a child killed mid-task fails that task as ChildExited; cancellation stops the child; neither returns to the pool', async () => {
    const pool = new WarmChildPool(probe, { maxIdle: 2, idleSeconds: 60 });
    let pid: number | undefined;
    const crashed = pool.run<WarmProbeInput, number, Answer>({ key: 'a', waitMs: 60_000 }, { onProgress: (reported) => (pid = reported) });
    await waitFor('the busy child', 10_000, () => pid);
    process.kill(pid!, 'SIGKILL');
    await assert.rejects(crashed, (err) => err instanceof ChildTaskError && err.name === 'ChildExited');

    const controller = new AbortController();
    let busy: number | undefined;
    const cancelled = pool.run<WarmProbeInput, number, Answer>({ key: 'a', waitMs: 60_000 }, { signal: controller.signal, onProgress: (reported) => (busy = reported) });
    await waitFor('the task to start', 10_000, () => busy);
    assert.notEqual(busy, pid, 'a new process replaced the killed one');
    controller.abort(new Error('cancelled'));
    await assert.rejects(cancelled, /cancelled/);
    assert.equal(isRunning(busy!), false);
    assert.equal(pool.idleProcesses.length, 0);
  });

  it('with idleSeconds 0, every task gets a process of its own', async () => {
    const pool = new WarmChildPool(probe, { maxIdle: 1, idleSeconds: 0 });
    const [a, b] = [await pool.run<WarmProbeInput, number, Answer>({ key: 'a', waitMs: 0 }), await pool.run<WarmProbeInput, number, Answer>({ key: 'a', waitMs: 0 })];
    assert.notEqual(a.pid, b.pid);
    assert.equal(pool.idleProcesses.length, 0);
  });

  it('an idle child neither keeps its parent alive nor outlives it', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, 'helpers', 'warm-pool-parent.js')], { timeout: 20_000 });
    const pid = Number(stdout.trim());
    assert.ok(pid > 0, stdout);
    await waitFor('the orphaned idle child to exit', 10_000, () => (isRunning(pid) ? undefined : true));
  });

  it('an idle child exits after idleSeconds', async () => {
    const pool = new WarmChildPool(probe, { maxIdle: 1, idleSeconds: 1 });
    const { pid } = await pool.run<WarmProbeInput, number, Answer>({ key: 'a', waitMs: 0 });
    assert.equal(pool.idleProcesses.length, 1);
    await waitFor('the idle child to exit', 20_000, () => (isRunning(pid) ? undefined : true));
    assert.equal(pool.idleProcesses.length, 0);
  });
});
