import type { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { activityCpuSeconds, activityDuration, activityExecutions, activityPeakRss } from '../lib/metrics';
import { withChildResourceTally } from '../lib/resource-usage';

const RSS_SAMPLE_INTERVAL_MS = 250;

/**
 * Records, for every activity execution, its duration, CPU seconds, peak RSS and outcome, so no activity has to.
 * CPU is the worker process's own (shared by concurrent activities) plus that of child processes the activity
 * started; peak RSS is the larger of the worker's and the activity's children's.
 */
export class ActivityMetricsInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly context: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const labels = { activity_type: this.context.info.activityType, task_queue: this.context.info.taskQueue };
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    let peakRss = process.memoryUsage.rss();
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), RSS_SAMPLE_INTERVAL_MS);
    sampler.unref();
    const outcome = await withChildResourceTally(() => next(input));
    clearInterval(sampler);
    const cpu = process.cpuUsage(cpuBefore);
    const status = 'result' in outcome ? 'completed' : isCancellation(outcome.error) ? 'cancelled' : 'failed';
    activityDuration.observe({ ...labels, outcome: status }, (performance.now() - started) / 1000);
    activityCpuSeconds.inc(labels, (cpu.user + cpu.system) / 1e6 + outcome.tally.cpuSeconds);
    activityPeakRss.set(labels, Math.max(peakRss, process.memoryUsage.rss(), outcome.tally.peakRssBytes));
    activityExecutions.inc({ ...labels, outcome: status });
    if ('error' in outcome) throw outcome.error;
    return outcome.result;
  }
}

function isCancellation(err: unknown): boolean {
  return err instanceof CancelledFailure || (err instanceof Error && err.name === 'AbortError');
}
