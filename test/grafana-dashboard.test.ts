import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { dashboardPanels } from './helpers/dashboard';
import { parseYaml } from './helpers/yaml';

const dockerDir = join(__dirname, '..', '..', 'docker');

interface Service {
  image?: string;
  volumes?: (string | { source: string; target: string })[];
}

/** A service's bind mounts as [host path, container path]. */
function mounts(service: Service): [string, string][] {
  return (service.volumes ?? []).map((volume) => (typeof volume === 'string' ? (volume.split(':').slice(0, 2) as [string, string]) : [volume.source, volume.target]));
}

/** The host path that a container path of the service comes from, through its bind mounts. */
function hostPath(service: Service, containerPath: string): string | undefined {
  for (const [host, target] of mounts(service)) {
    if (containerPath === target) return host;
    if (containerPath.startsWith(`${target}/`)) return join(host, containerPath.slice(target.length + 1));
  }
  return undefined;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)).map((name) => join(dir, name));
}

describe('docker/grafana: the dashboard and its provisioning', () => {
  const dockerCompose = spawnSync('docker-compose', ['version']).status === 0;

  it('compose mounts the data source, the dashboard provider and the dashboard where Grafana and the provider look, and the alert rules where prometheus.yml names them', { skip: dockerCompose ? false : 'docker-compose is not installed (scripts/provision-test-tools.sh installs it)' }, () => {
    const config = spawnSync('docker-compose', ['-f', join(dockerDir, 'compose.yaml'), 'config'], { encoding: 'utf8' });
    assert.equal(config.status, 0, config.stderr);
    const services = parseYaml<{ services: Record<string, Service> }>(config.stdout).services;
    const grafana = services.grafana!;
    const provisioning = hostPath(grafana, '/etc/grafana/provisioning');
    assert.ok(provisioning, 'Grafana reads provisioning files from /etc/grafana/provisioning');

    const datasources = yamlFiles(join(provisioning, 'datasources')).flatMap((file) => parseYaml<{ datasources: { uid: string; type: string; url: string }[] }>(readFileSync(file, 'utf8')).datasources);
    assert.equal(datasources.length, 1);
    const [datasource] = datasources;
    assert.equal(datasource!.type, 'prometheus');
    const url = new URL(datasource!.url);
    assert.ok(services[url.hostname]?.image?.startsWith('prom/prometheus'), `${url.hostname} is the compose file's Prometheus`);
    assert.equal(url.port, '9090');

    const providers = yamlFiles(join(provisioning, 'dashboards')).flatMap((file) => parseYaml<{ providers: { type: string; options: { path: string } }[] }>(readFileSync(file, 'utf8')).providers);
    assert.equal(providers.length, 1);
    assert.equal(providers[0]!.type, 'file');
    const dashboards = hostPath(grafana, providers[0]!.options.path);
    assert.ok(dashboards, `compose mounts a folder at the provider's path ${providers[0]!.options.path}`);
    assert.deepEqual(readdirSync(dashboards).filter((name) => name.endsWith('.json')), ['temporal-ml.json']);

    for (const panel of dashboardPanels().filter((p) => p.type !== 'row')) {
      assert.deepEqual(panel.datasource, { type: 'prometheus', uid: datasource!.uid }, `${panel.title} queries the provisioned data source`);
      for (const target of panel.targets ?? []) assert.deepEqual(target.datasource, panel.datasource, `${panel.title} ${target.refId}`);
    }

    const prometheus = services.prometheus!;
    const prometheusConfig = parseYaml<{ rule_files: string[] }>(readFileSync(hostPath(prometheus, '/etc/prometheus/prometheus.yml')!, 'utf8'));
    for (const ruleFile of prometheusConfig.rule_files) {
      const mounted = hostPath(prometheus, posix.resolve('/etc/prometheus', ruleFile));
      assert.equal(mounted, join(dockerDir, 'alerts.yml'), `${ruleFile} is mounted beside prometheus.yml`);
    }
  });

  it('has a panel for each figure an operator watches, laid out without overlaps', () => {
    const panels = dashboardPanels();
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique');
    const cells = new Set<string>();
    for (const { gridPos, title } of panels) {
      assert.ok(gridPos.x >= 0 && gridPos.x + gridPos.w <= 24, `${title} fits Grafana's 24 columns`);
      for (let x = gridPos.x; x < gridPos.x + gridPos.w; x++) {
        for (let y = gridPos.y; y < gridPos.y + gridPos.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `${title} overlaps another panel at ${x},${y}`);
          cells.add(`${x},${y}`);
        }
      }
    }
    const expressions = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const metric of [
      'up',
      'temporal_ml_activity_duration_seconds_bucket',
      'temporal_ml_activity_cpu_seconds_total',
      'temporal_ml_activity_peak_rss_bytes',
      'temporal_ml_activity_executions_total',
      'temporal_ml_images_preprocessed_total',
      'temporal_ml_training_samples_per_second',
      'temporal_ml_training_last_progress_timestamp_seconds',
      'temporal_ml_model_test_accuracy',
      'temporal_activity_schedule_to_start_latency_bucket',
      'temporal_workflow_task_schedule_to_start_latency_bucket',
      'temporal_worker_task_slots_used',
      'temporal_worker_task_slots_available',
    ]) {
      assert.match(expressions, new RegExp(`\\b${metric}\\b`), `a panel shows ${metric}`);
    }
  });
});
