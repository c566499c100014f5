import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mlPipeline, preprocessDataset } from '../workflows';
import { dashboardPanels } from './helpers/dashboard';
import { invalidInputOf } from './helpers/failures';
import { freePort, startTemporal, startWorkerProcess, temporaryDataDir, type WorkerProcess } from './helpers/temporal';
import { waitFor } from './helpers/wait';
import { parseYaml } from './helpers/yaml';

const dockerDir = join(__dirname, '..', '..', 'docker');
const prometheusInstalled = spawnSync('prometheus', ['--version']).status === 0;

interface Series {
  metric: Record<string, string>;
  values?: [number, string][];
  value?: [number, string];
}

interface Target {
  labels: { job: string; instance: string };
  health: string;
  lastScrape: string;
}

interface Rule {
  name: string;
  type: string;
  health: string;
  lastError?: string;
}

interface Alert {
  labels: Record<string, string>;
  state: string;
}

/** docker/prometheus.yml's jobs and rule files, scraping the given worker ports instead of compose's services. */
function prometheusConfig(workers: WorkerProcess[]): object {
  const deployed = parseYaml<{ rule_files: string[]; scrape_configs: { job_name: string; dns_sd_configs: { port: number }[] }[] }>(
    readFileSync(join(dockerDir, 'prometheus.yml'), 'utf8'),
  );
  const portOf = (worker: WorkerProcess, deployedPort: number) => (deployedPort === 9464 ? worker.metricsPort : deployedPort === 9465 ? worker.sdkMetricsPort : assert.fail(`unknown port ${deployedPort}`));
  return {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: deployed.rule_files.map((file) => resolve(dockerDir, file)),
    scrape_configs: deployed.scrape_configs.map((job) => ({
      job_name: job.job_name,
      static_configs: [{ targets: workers.map((worker) => `127.0.0.1:${portOf(worker, job.dns_sd_configs[0]!.port)}`) }],
    })),
  };
}

/** Metric names an expression reads: identifiers outside label matchers, grouping lists and ranges that are not functions or keywords. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset']);
  return [...bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map((m) => m[1]!).filter((name) => !keywords.has(name));
}

describe('Prometheus scraping two live workers, with the alert rules and dashboard of docker/ (real Prometheus, Temporal, workers)', { skip: prometheusInstalled ? false : 'prometheus is not installed (scripts/provision-test-tools.sh installs it)' }, () => {
  let env: TestWorkflowEnvironment;
  let cpuWorker: WorkerProcess;
  let trainWorker: WorkerProcess;
  let prometheus: ChildProcess;
  let prometheusOutput = '';
  let prometheusUrl: string;
  let storage: string;
  let startedAt: number;
  let trainWorkflowId: string;

  async function api<T>(path: string, params: Record<string, string | number> = {}): Promise<T> {
    const query = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
    const response = await fetch(`${prometheusUrl}/api/v1/${path}?${query}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    assert.equal(body.status, 'success', `${path} ${query}: ${body.error}`);
    return body.data;
  }

  const instant = async (expr: string) => (await api<{ result: Series[] }>('query', { query: expr })).result;
  // The range ends a step past now: its last step then falls after the newest sample, whatever the scrape's phase.
  const overRun = async (expr: string) => (await api<{ result: Series[] }>('query_range', { query: expr, start: startedAt / 1000, end: Date.now() / 1000 + 1, step: 1 })).result;

  before(async () => {
    startedAt = Date.now();
    env = await startTemporal();
    const dataDir = temporaryDataDir();
    [cpuWorker, trainWorker] = await Promise.all([
      startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-pipeline,ml-cpu' }),
      startWorkerProcess(env.address, dataDir, { TASK_QUEUES: 'ml-train' }),
    ]);
    storage = mkdtempSync(join(tmpdir(), 'prometheus-'));
    writeFileSync(join(storage, 'prometheus.json'), JSON.stringify(prometheusConfig([cpuWorker, trainWorker])));
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn('prometheus', [`--config.file=${join(storage, 'prometheus.json')}`, `--storage.tsdb.path=${join(storage, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    prometheus.stdout!.on('data', (d) => (prometheusOutput += d));
    prometheus.stderr!.on('data', (d) => (prometheusOutput += d));
    await waitFor(`Prometheus to be ready:\n${prometheusOutput}`, 60_000, async () => ((await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined))?.ok ? true : undefined));
    // Prometheus hands new targets to its scrapers a few seconds after it is ready: the run starts once all are scraped.
    await waitFor('a first scrape of every target', 30_000, async () => {
      const active = (await api<{ activeTargets: Target[] }>('targets', { state: 'active' })).activeTargets;
      return active.length === 4 && active.every((t) => t.health === 'up') ? true : undefined;
    });

    // A user error fails an activity, so the failure series exist; then a small run trains and evaluates a model, long
    // enough for several scrapes of its progress.
    await invalidInputOf(env.client.workflow.execute(preprocessDataset, { taskQueue: 'ml-pipeline', workflowId: `prometheus-failing-${Date.now()}`, args: [{ dataset: { source: 'no-such-folder' } }] }));
    const workflowId = `prometheus-pipeline-${Date.now()}`;
    trainWorkflowId = `${workflowId}-train`;
    await env.client.workflow.execute(mlPipeline, {
      taskQueue: 'ml-pipeline',
      workflowId,
      args: [{ dataset: { maxImages: 600 }, model: { filters: [8], hiddenUnits: [16] }, training: { epochs: 20, batchSize: 16 }, compression: null }],
    });
    const finishedAt = Date.now();
    await waitFor('two scrapes of every target after the run', 30_000, async () => {
      const active = (await api<{ activeTargets: Target[] }>('targets', { state: 'active' })).activeTargets;
      return active.length > 0 && active.every((t) => Date.parse(t.lastScrape) > finishedAt + 1000) ? true : undefined;
    });
  });

  after(async () => {
    prometheus?.kill('SIGTERM');
    if (prometheus && prometheus.exitCode === null) await new Promise((r) => prometheus.once('exit', r));
    await Promise.all([cpuWorker?.stop(), trainWorker?.stop()]);
    await env?.teardown();
    if (storage) rmSync(storage, { recursive: true, force: true });
  });

  it("scrapes both workers' project and SDK endpoints, under the job names of docker/prometheus.yml", async () => {
    const expected = ['temporal-ml', 'temporal-sdk'].flatMap((job) => [cpuWorker, trainWorker].map((w) => `${job} 127.0.0.1:${job === 'temporal-ml' ? w.metricsPort : w.sdkMetricsPort}`)).sort();
    const targets = await waitFor('every target up', 30_000, async () => {
      const active = (await api<{ activeTargets: Target[] }>('targets', { state: 'active' })).activeTargets;
      return active.length === expected.length && active.every((t) => t.health === 'up') ? active : undefined;
    });
    assert.deepEqual(targets.map((t) => `${t.labels.job} ${t.labels.instance}`).sort(), expected);
    assert.deepEqual((await instant('up')).map((s) => s.value![1]), ['1', '1', '1', '1']);
  });

  it("has each worker's activity duration, CPU and memory, throughput and accuracy series, and the SDK's", async () => {
    const cpu = `instance="127.0.0.1:${cpuWorker.metricsPort}"`;
    const train = `instance="127.0.0.1:${trainWorker.metricsPort}"`;
    const positive = async (expr: string) => {
      const result = await instant(expr);
      assert.ok(result.length > 0 && result.every((s) => Number(s.value![1]) > 0), `${expr}: ${JSON.stringify(result)}`);
    };
    for (const [activity, instance] of [['preprocessBatch', cpu], ['evaluateModel', cpu], ['runTraining', train]] as const) {
      const labels = `activity_type="${activity}",${instance},outcome="completed"`;
      await positive(`temporal_ml_activity_duration_seconds_count{${labels}}`);
      await positive(`temporal_ml_activity_executions_total{${labels}}`);
      await positive(`temporal_ml_activity_cpu_seconds_total{activity_type="${activity}",${instance}}`);
      await positive(`temporal_ml_activity_peak_rss_bytes{activity_type="${activity}",${instance}}`);
    }
    await positive(`temporal_ml_activity_executions_total{activity_type="listDataset",outcome="failed",${cpu}}`);
    await positive(`temporal_ml_preprocess_images_per_second{${cpu}}`);
    await positive(`temporal_ml_images_preprocessed_total{cache="miss",${cpu}}`);
    await positive(`temporal_ml_training_samples_per_second{model="mnist-digits",backend="tensorflow",${train}}`);
    await positive(`temporal_ml_model_test_accuracy{model="mnist-digits",${cpu}}`);
    await positive(`temporal_activity_schedule_to_start_latency_count{task_queue="ml-train",instance="127.0.0.1:${trainWorker.sdkMetricsPort}"}`);
    await positive(`temporal_worker_task_slots_available{task_queue="ml-train",instance="127.0.0.1:${trainWorker.sdkMetricsPort}"}`);
  });

  it('had a last-progress timestamp for the training while it ran, moving with its progress, and none once it ended', async () => {
    const series = await overRun(`temporal_ml_training_last_progress_timestamp_seconds{workflow_id="${trainWorkflowId}"}`);
    assert.equal(series.length, 1, JSON.stringify(series));
    const [{ metric, values }] = series as [Series];
    assert.equal(metric.activity_type, 'runTraining');
    assert.equal(metric.model, 'mnist-digits');
    assert.equal(metric.instance, `127.0.0.1:${trainWorker.metricsPort}`);
    const stamps = values!.map(([at, value]) => [at, Number(value)] as const);
    for (const [at, value] of stamps) assert.ok(value >= startedAt / 1000 && value <= at + 1, `progress at ${value}, sampled at ${at}`);
    assert.ok(new Set(stamps.map(([, value]) => value)).size > 1, 'the timestamp moved as the training reported progress');
    assert.deepEqual(await instant(`temporal_ml_training_last_progress_timestamp_seconds{workflow_id="${trainWorkflowId}"}`), []);
  });

  it('loads every alert rule of docker/alerts.yml and evaluates each without error', async () => {
    const alerts = parseYaml<{ groups: { rules: { alert: string }[] }[] }>(readFileSync(join(dockerDir, 'alerts.yml'), 'utf8')).groups.flatMap((g) => g.rules.map((r) => r.alert));
    const rules = await waitFor('every rule evaluated', 30_000, async () => {
      const loaded = (await api<{ groups: { rules: Rule[] }[] }>('rules')).groups.flatMap((g) => g.rules);
      return loaded.length === alerts.length && loaded.every((r) => r.health !== 'unknown') ? loaded : undefined;
    });
    assert.deepEqual(rules.map((r) => r.name).sort(), [...alerts].sort());
    for (const rule of rules) {
      assert.equal(rule.type, 'alerting');
      assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
    }
  });

  it("answers every expression of the Grafana dashboard with data from the workers' series", async () => {
    const exported = new Set(await api<string[]>('label/__name__/values'));
    const targets = dashboardPanels().flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));
    assert.ok(targets.length > 0);
    for (const { panel, expr } of targets) {
      const query = expr.replaceAll('$__rate_interval', '1m');
      assert.doesNotMatch(query, /\$/, `${panel}: only $__rate_interval is substituted`);
      for (const name of metricNames(query)) assert.ok(exported.has(name), `${panel}: ${name} is not a series the workers export`);
      assert.ok((await overRun(query)).length > 0, `${panel}: ${query} returned no data`);
    }
  });

  it('puts WorkerDown in pending for both endpoints of a worker that stops', async () => {
    assert.equal(await trainWorker.stop(), 0);
    const instances = [trainWorker.metricsPort, trainWorker.sdkMetricsPort].map((port) => `127.0.0.1:${port}`).sort();
    const down = await waitFor('WorkerDown pending for the stopped worker', 30_000, async () => {
      const alerts = (await api<{ alerts: Alert[] }>('alerts')).alerts.filter((a) => a.labels.alertname === 'WorkerDown');
      return alerts.length === 2 ? alerts : undefined;
    });
    assert.deepEqual(down.map((a) => a.labels.instance).sort(), instances);
    assert.ok(down.every((a) => a.state === 'pending'), 'pending: it fires after 2 minutes down');
  });
});
