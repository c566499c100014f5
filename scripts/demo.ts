import { Client, Connection } from '@temporalio/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { followRun } from '../cli/follow';
import { artifactStore } from '../lib/artifacts';
import { dataConverterFromEnvironment } from '../lib/encryption/data-converter';
import { mlPipeline, type MlPipelineResult } from '../workflows';
import { TemporalConnectionError, temporalConnectConfig, type TemporalConnectConfig } from '../workers/connection';
import { connectExplained } from '../workers/connection-failure';
import { devServerOptions, startDevServer, waitForPort, type DevServerOptions } from './dev-server';

/**
 * `npm run demo`: starts a Temporal dev server (unless one already listens, or TEMPORAL_ADDRESS or a config profile
 * names a server to use, with its TLS settings) and a worker, runs `mlPipeline`, prints the result and where to see it,
 * then stops what it started. Optional argument: the input JSON.
 */
async function isListening(host: string, port: number): Promise<boolean> {
  return waitForPort(host, port, 0).then(
    () => true,
    () => false,
  );
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** One line per activity type: executions, seconds, CPU seconds and peak RSS, read back from the worker's /metrics. */
async function activityMetricsSummary(port: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const rows = new Map<string, Record<string, number>>();
  const pattern = /^temporal_ml_activity_(duration_seconds_sum|duration_seconds_count|cpu_seconds_total|peak_rss_bytes)\{activity_type="([^"]+)"[^}]*\} (\S+)$/gm;
  for (const [, metric, activity, value] of text.matchAll(pattern)) {
    const row = rows.get(activity!) ?? {};
    row[metric!] = (row[metric!] ?? 0) + Number(value);
    rows.set(activity!, row);
  }
  return [...rows]
    .map(([activity, m]) =>
      `  ${activity.padEnd(16)} ${String(m.duration_seconds_count ?? 0).padStart(3)} run(s)  ${(m.duration_seconds_sum ?? 0).toFixed(2).padStart(7)} s  ` +
      `cpu ${(m.cpu_seconds_total ?? 0).toFixed(2).padStart(7)} s  peak rss ${((m.peak_rss_bytes ?? 0) / 2 ** 20).toFixed(0).padStart(5)} MiB`,
    )
    .join('\n');
}

/** The server named by the connection settings (TEMPORAL_ADDRESS or a config profile), else a dev server this demo starts unless one listens. */
function serverToUse(): { config: TemporalConnectConfig; devServer?: DevServerOptions } {
  const config = temporalConnectConfig();
  if (config.profile.address !== undefined) {
    console.log(`Using the Temporal server at ${config.connectionOptions.address}${config.connectionOptions.tls ? ' over TLS' : ''}.`);
    return { config };
  }
  const devServer = devServerOptions();
  const address = `${devServer.ip}:${devServer.port}`;
  return { config: { ...config, connectionOptions: { ...config.connectionOptions, address } }, devServer };
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '{}');
  const dataConverter = dataConverterFromEnvironment();
  const { config, devServer } = serverToUse();
  const { address } = config.connectionOptions;
  let serverProcess: ChildProcess | undefined;
  let worker: ChildProcess | undefined;
  try {
    if (devServer && (await isListening(devServer.ip, devServer.port))) {
      console.log(`Using the Temporal server already listening on ${address}.`);
    } else if (devServer) {
      console.log(`Starting the Temporal dev server on ${address} (data in ${devServer.dbFilename})…`);
      serverProcess = startDevServer(devServer, 'ignore');
      await waitForPort(devServer.ip, devServer.port, 60_000);
    }
    const connection = await connectExplained(config, () => Connection.connect(config.connectionOptions));
    const client = new Client({ connection, namespace: config.namespace, dataConverter });
    console.log('Starting a worker on ml-pipeline, ml-cpu and ml-train…');
    worker = spawn(process.execPath, [join(__dirname, '..', 'workers', 'main.js')], {
      env: { ...process.env, TEMPORAL_ADDRESS: address },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let workerLog = '';
    worker.stderr!.on('data', (chunk: Buffer) => (workerLog += chunk.toString()));
    worker.once('exit', (code) => code && console.error(`the worker exited with code ${code}:\n${workerLog}`));
    await new Promise<void>((resolve, reject) => {
      worker!.stdout!.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        for (const line of text.split('\n')) if (/backend|Metrics on|Worker connected/.test(line)) console.log(`  worker: ${line}`);
        if (text.includes('Worker connected')) resolve();
      });
      worker!.once('exit', (code) => reject(new Error(`the worker exited with code ${code}`)));
    });

    const workflowId = `ml-pipeline-demo-${Date.now()}`;
    const started = Date.now();
    await client.workflow.start(mlPipeline, { taskQueue: 'ml-pipeline', workflowId, args: [input] });
    console.log(`Started mlPipeline ${workflowId} with input ${JSON.stringify(input)}`);
    const result = (await followRun(client, workflowId)) as MlPipelineResult;
    await connection.close();
    if (result.status === 'unchanged') {
      console.log(`\nUnchanged: champion version ${result.champion.version} (${result.champion.modelUri}) was trained on the same data with the same configuration`);
      return;
    }
    console.log('\nResult:');
    console.log(`  test accuracy   ${(result.testAccuracy * 100).toFixed(2)}% on ${result.counts.test} held-out images (loss ${result.testLoss.toFixed(4)})`);
    console.log(`  backend         ${result.backend}, ${result.parameterCount} parameters, ${result.epochs} epochs, ${Math.round(result.trainingSamplesPerSecond)} samples/s`);
    console.log(`  images          ${result.counts.train} train / ${result.counts.validation} validation / ${result.counts.test} test, ${Object.values(result.leftOutByReason).reduce((a, b) => a + (b ?? 0), 0)} left out${result.preprocessCacheHit ? ' (preprocessing reused from the cache)' : ''}`);
    console.log(`  stage seconds   ${Object.entries(result.stageSeconds).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
    console.log(`  total           ${((Date.now() - started) / 1000).toFixed(1)}s`);
    // Where a person opens each artifact: a path here, or the object store's URL (`npm run cli -- artifact get` copies it out).
    const where = (uri: string) => artifactStore().locationOf(uri);
    console.log(`  model           ${where(result.modelUri)}/model.json`);
    console.log(`  dataset         ${where(result.manifestUri)}`);
    console.log(`  evaluation      ${where(result.reportUri)}`);
    console.log(`  report          ${result.reportHtmlPath} (charts; open it in a browser)`);
    console.log(`  registry        version ${result.registry.version} of ${result.modelName}, champion ${result.registry.champion ?? 'none'}: ${result.registry.reason}`);
    if (result.compression) {
      console.log(`\nCompression (table ${where(result.compression.tableUri)}):`);
      console.log(result.compression.markdown);
    }
    console.log('\nPer-activity figures from the worker\'s /metrics:');
    console.log(await activityMetricsSummary(Number(process.env.METRICS_PORT ?? 9464)));
    if (devServer) console.log(`\nWeb UI: http://localhost:${devServer.uiPort}/namespaces/default/workflows/${workflowId}`);
    else console.log(`\nRun ${workflowId} in namespace ${config.namespace} of ${address}`);
    if (serverProcess) console.log('(The demo stops its server now; `npm run server` brings it back with this run in its history.)');
  } finally {
    await stop(worker);
    await stop(serverProcess);
  }
}

main().catch((err) => {
  console.error(err instanceof TemporalConnectionError ? err.message : err);
  process.exit(1);
});
