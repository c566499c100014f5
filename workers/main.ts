import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as activities from '../activities';
import { parseTaskQueues, settings, type TaskQueue } from '../lib/config';
import { dataConverterFromEnvironment } from '../lib/encryption/data-converter';
import { KeyFileError } from '../lib/encryption/key-file';
import { tensorflowBackend } from '../lib/metrics';
import { oneThreadPerOp, tensorflow } from '../lib/tf';
import { ActivityMetricsInterceptor } from './activity-metrics-interceptor';
import { connectExplained } from './connection-failure';
import { TemporalConnectionError, temporalConnectConfig, type TemporalConnectConfig } from './connection';
import { startMetricsServer } from './metrics-server';

/** `--queues ml-cpu,ml-train` overrides TASK_QUEUES. */
function queuesFromArgs(): TaskQueue[] {
  const index = process.argv.indexOf('--queues');
  if (index === -1) return settings().taskQueues;
  return parseTaskQueues(process.argv[index + 1] ?? '', '--queues');
}

function workflowSource(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  const bundle = join(__dirname, '..', 'workflow-bundle.js');
  return existsSync(bundle) ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../workflows') };
}

const QUEUE_OPTIONS: Record<TaskQueue, () => Partial<WorkerOptions>> = {
  'ml-pipeline': () => ({ ...workflowSource() }),
  // Heartbeats flushed every second, so a cancelled preprocessing batch hears of it within about that.
  'ml-cpu': () => ({ activities, maxConcurrentActivityTaskExecutions: Number(process.env.CPU_ACTIVITY_SLOTS ?? 4), maxHeartbeatThrottleInterval: '1 second' }),
  // One training job per process by default, so it owns the cores (TEMPORAL_ML_TRAIN_SLOTS runs more, each with fewer
  // threads). Heartbeats carry the latest checkpoint: flush them every 2 s (not the SDK's default 80% of the
  // heartbeat timeout), so a retry after a crash resumes from a recent one.
  'ml-train': () => ({ activities, maxConcurrentActivityTaskExecutions: settings().training.slots, maxHeartbeatThrottleInterval: '2 seconds' }),
};

/**
 * Waits for the server (up to TEMPORAL_CONNECT_TIMEOUT_SECONDS, default 60), so starting the worker first is fine; a
 * server whose certificate the worker rejects, or that wants TLS the worker does not use, is not waited for.
 */
async function connectWithRetry(config: TemporalConnectConfig): Promise<NativeConnection> {
  const waitSeconds = Number(process.env.TEMPORAL_CONNECT_TIMEOUT_SECONDS ?? 60);
  const deadline = Date.now() + waitSeconds * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectExplained(config, () => NativeConnection.connect(config.connectionOptions));
    } catch (err) {
      if (!(err instanceof TemporalConnectionError) || !err.retryable || Date.now() > deadline) throw err;
      if (attempt === 1) console.log(`${err.message.split('\n')[0]} Trying again for up to ${waitSeconds} s…`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function main(): Promise<void> {
  const config = settings();
  const queues = queuesFromArgs();
  const dataConverter = dataConverterFromEnvironment();
  if (config.sdkMetricsPort > 0) {
    Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: `${config.metricsHost}:${config.sdkMetricsPort}` } } } });
  }
  // Preprocessing decodes on threads of its own, one per core.
  if (queues.includes('ml-cpu')) oneThreadPerOp();
  if (queues.some((q) => q !== 'ml-pipeline')) {
    const { backend } = tensorflow();
    tensorflowBackend.set({ backend }, 1);
    console.log(`TensorFlow.js backend: ${backend}`);
  }
  const metricsServer = await startMetricsServer(config.metricsHost, config.metricsPort);
  console.log(`Metrics on http://${config.metricsHost}:${config.metricsPort}/metrics` +
    (config.sdkMetricsPort > 0 ? `, Temporal SDK metrics on :${config.sdkMetricsPort}/metrics` : ''));

  const connectConfig = temporalConnectConfig();
  const { connectionOptions, namespace } = connectConfig;
  const connection = await connectWithRetry(connectConfig);
  try {
    const workers = await Promise.all(
      queues.map((taskQueue) =>
        Worker.create({
          connection,
          namespace,
          taskQueue,
          dataConverter,
          interceptors: { activity: [(ctx) => ({ inbound: new ActivityMetricsInterceptor(ctx) })] },
          ...QUEUE_OPTIONS[taskQueue](),
        }),
      ),
    );
    console.log(`Worker connected to ${connectionOptions.address} (namespace ${namespace}), serving ${queues.join(', ')}` +
      (dataConverter ? ', payloads encrypted' : ''));
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await connection.close();
    metricsServer.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof TemporalConnectionError || err instanceof KeyFileError ? err.message : err);
    process.exit(1);
  },
);
