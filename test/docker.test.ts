import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { TASK_QUEUES } from '../lib/config';
import { preprocessDataset } from '../workflows';
import { startTemporal, startWorkerProcess, temporaryDataDir, type WorkerProcess } from './helpers/temporal';
import { parseYaml } from './helpers/yaml';

const repoRoot = join(__dirname, '..', '..');
const dockerDir = join(repoRoot, 'docker');

interface Instruction {
  op: string;
  args: string;
}

interface Stage {
  name?: string;
  instructions: Instruction[];
}

/** The Dockerfile's stages, continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim());
  for (const line of lines.filter((l) => l && !l.startsWith('#'))) {
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    if (op!.toUpperCase() === 'FROM') stages.push({ name: /\bAS\s+(\S+)/i.exec(args!)?.[1], instructions: [] });
    stages.at(-1)!.instructions.push({ op: op!.toUpperCase(), args: args! });
  }
  return stages;
}

function parseEnv(args: string): Record<string, string> {
  return Object.fromEntries(args.split(/\s+/).map((pair) => pair.split('=', 2) as [string, string]));
}

/** Stands in for one build stage on this machine: a folder for its WORKDIR, the environment its ENV lines set. */
interface StageFolder {
  dir: string;
  workdir: string;
  env: Record<string, string>;
}

/** COPY with Docker's meaning: a folder's contents go into the destination; files go into it when it ends in `/`. */
function copy(args: string, into: StageFolder, stages: Map<string, StageFolder>): void {
  assert.ok(!args.startsWith('['), 'COPY in JSON form is not handled here');
  const words = args.split(/\s+/);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
  const paths = words.filter((w) => !w.startsWith('--'));
  const dest = paths.pop()!;
  const source = from ? stages.get(from)! : undefined;
  for (const path of paths) {
    const src = source ? join(source.dir, relative(source.workdir, path)) : join(repoRoot, path);
    const target = join(into.dir, dest);
    const isFile = statSync(src).isFile();
    const intoFolder = isFile && (dest.endsWith('/') || paths.length > 1);
    mkdirSync(isFile && !intoFolder ? dirname(target) : target, { recursive: true });
    // cp -a keeps links as they are, like COPY, and copies node_modules several times faster than fs.cpSync.
    const copied = spawnSync('cp', ['-a', isFile ? src : `${src}/.`, intoFolder ? join(target, basename(path)) : target], { encoding: 'utf8' });
    assert.equal(copied.status, 0, `COPY ${args}: ${copied.stderr}`);
  }
}

/** Symbolic links under `dir` whose target lies outside it: broken once the folder is an image layer. */
function linksLeaving(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isSymbolicLink())
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((link) => {
      const target = realpathSync(link);
      return target !== dir && !target.startsWith(dir + sep);
    });
}

describe('docker/Dockerfile (built without a Docker engine)', () => {
  const stagesText = readFileSync(join(dockerDir, 'Dockerfile'), 'utf8');
  const stages = parseDockerfile(stagesText);
  const folders: string[] = [];
  let env: TestWorkflowEnvironment | undefined;
  let worker: WorkerProcess | undefined;

  after(async () => {
    await worker?.stop();
    await env?.teardown();
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });

  it('builds from exactly what it copies, and its final stage runs a worker that processes a dataset', async () => {
    const built = new Map<string, StageFolder>();
    let final: StageFolder | undefined;
    let cmd: string[] = [];
    for (const [index, stage] of stages.entries()) {
      const folder: StageFolder = { dir: realpathSync(mkdtempSync(join(tmpdir(), `docker-stage-${index}-`))), workdir: '/', env: {} };
      folders.push(folder.dir);
      const last = index === stages.length - 1;
      for (const { op, args } of stage.instructions) {
        if (op === 'WORKDIR') folder.workdir = args;
        else if (op === 'ENV') Object.assign(folder.env, parseEnv(args));
        else if (op === 'COPY') copy(args, folder, built);
        else if (op === 'CMD') cmd = JSON.parse(args) as string[];
        // apt-get installs the base image's system packages; the final stage's RUN lines prepare image paths such as
        // the volume (checked by the next test). Everything else runs as written, with npm's cache preferred.
        else if (op === 'RUN' && !last && !args.startsWith('apt-get')) {
          const run = spawnSync('sh', ['-c', args], {
            cwd: folder.dir,
            env: { ...process.env, ...folder.env, npm_config_prefer_offline: 'true', ONNXRUNTIME_NODE_INSTALL: 'skip' },
            encoding: 'utf8',
            maxBuffer: 1 << 28,
          });
          assert.equal(run.status, 0, `RUN ${args} failed:\n${(run.stdout + run.stderr).slice(-4000)}`);
        }
      }
      if (stage.name) built.set(stage.name, folder);
      final = folder;
    }
    assert.ok(final);
    assert.deepEqual(linksLeaving(final.dir), [], 'every link in the image points inside it');

    const dataDir = temporaryDataDir();
    const classes = ['dark', 'light'];
    for (const [label, name] of classes.entries()) {
      mkdirSync(join(dataDir, 'datasets', 'tiny', name), { recursive: true });
      for (let i = 0; i < 5; i++) {
        await sharp({ create: { width: 12, height: 12, channels: 3, background: { r: 40 + 150 * label + i, g: 50, b: 60 } } })
          .png()
          .toFile(join(dataDir, 'datasets', 'tiny', name, `${i}.png`));
      }
    }
    env = await startTemporal();
    assert.equal(cmd[0], 'node');
    // This machine's folders and free ports stand in for the image's.
    const imageEnv = Object.fromEntries(Object.entries(final.env).filter(([key]) => !['TEMPORAL_ML_DATA_DIR', 'METRICS_PORT', 'SDK_METRICS_PORT'].includes(key)));
    worker = await startWorkerProcess(env.address, dataDir, imageEnv, join(final.dir, cmd[1]!));
    assert.match(worker.output(), /TensorFlow\.js backend: tensorflow/);
    const result = await env.client.workflow.execute(preprocessDataset, {
      taskQueue: 'ml-pipeline',
      workflowId: `docker-image-${Date.now()}`,
      args: [{ dataset: { source: 'tiny' } }],
    });
    assert.equal(result.images.kept, 10);
  });

  it('gives the unprivileged user the volume it writes to', () => {
    const final = stages.at(-1)!.instructions;
    const user = final.find((i) => i.op === 'USER')?.args;
    assert.ok(user && user !== 'root', 'the image runs as an unprivileged user');
    const volumes = final.filter((i) => i.op === 'VOLUME').flatMap((i) => i.args.split(/\s+/));
    assert.ok(volumes.length > 0);
    for (const volume of volumes) {
      const declared = final.findIndex((i) => i.op === 'VOLUME' && i.args.split(/\s+/).includes(volume));
      // Docker copies a folder's owner into a new named volume; a mount point the image does not have is root's.
      const owned = final.slice(0, declared).some((i) => i.op === 'RUN' && new RegExp(`mkdir -p ${volume}\\b.*chown ${user}(:${user})? ${volume}\\b`).test(i.args));
      assert.ok(owned, `${volume} is created and given to ${user} before VOLUME declares it`);
    }
  });
});

interface ComposeService {
  environment?: Record<string, string>;
  volumes?: (string | { source?: string; target?: string })[];
}

/** `docker-compose config` of docker/compose.yaml with `env` set: the services as Compose resolves them. */
function composeServices(env: Record<string, string> = {}): Record<string, ComposeService> {
  const config = spawnSync('docker-compose', ['-f', join(dockerDir, 'compose.yaml'), 'config'], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(config.status, 0, config.stderr);
  return parseYaml<{ services: Record<string, ComposeService> }>(config.stdout).services;
}

/** A service's mounts, from the short (`source:target[:mode]`) or the long syntax. */
function mountsOf(service: ComposeService): { source?: string; target?: string }[] {
  return (service.volumes ?? []).map((volume) => (typeof volume === 'string' ? { source: volume.split(':')[0]!, target: volume.split(':')[1] } : volume));
}

describe('docker/compose.yaml (docker-compose config)', () => {
  const skip = spawnSync('docker-compose', ['version']).status === 0 ? false : 'docker-compose is not installed (scripts/provision-test-tools.sh installs it)';

  it('is valid, binds worker metrics on every interface and passes the Temporal connection settings and the payload key file through', { skip }, () => {
    const connection = {
      TEMPORAL_NAMESPACE: 'ml.a1b2c',
      TEMPORAL_API_KEY: 'test-api-key',
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/temporal/tls/client.pem',
      TEMPORAL_TLS_CLIENT_KEY_PATH: '/etc/temporal/tls/client.key',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/etc/temporal/tls/ca.pem',
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
      TEMPORAL_ML_ENCRYPTION_KEY_FILE: '/run/secrets/temporal-ml-keys.json',
    };
    const services = composeServices(connection);
    for (const name of ['worker', 'worker-train']) {
      const environment = services[name]!.environment!;
      assert.equal(environment.METRICS_HOST, '0.0.0.0', `${name} serves metrics to Prometheus in another container`);
      for (const [key, value] of Object.entries(connection)) assert.equal(environment[key], value, `${name} gets ${key}`);
      assert.equal(environment.TEMPORAL_ML_ARTIFACT_URL, 's3://temporal-ml/artifacts', `${name} keeps artifacts in the object store`);
      assert.equal(environment.AWS_ENDPOINT_URL_S3, 'http://objectstore:7070');
    }
    assert.ok(services.objectstore, 'an object store service');
    // Workers share nothing but Temporal and the object store: no volume (named or bound folder) is in two of them.
    const mountedBy = new Map<string, string>();
    for (const [name, service] of Object.entries(services).filter(([name]) => name.startsWith('worker'))) {
      for (const { source: mounted } of mountsOf(service)) {
        const source = String(mounted);
        assert.ok(!mountedBy.has(source), `${source} is mounted by both ${mountedBy.get(source)} and ${name}`);
        mountedBy.set(source, name);
      }
    }
  });

  it('serves each of the project’s task queues from one partition on its Temporal server', { skip }, () => {
    const temporal = composeServices().temporal!;
    // auto-setup reads DYNAMIC_CONFIG_FILE_PATH relative to /etc/temporal.
    const target = join('/etc/temporal', temporal.environment!.DYNAMIC_CONFIG_FILE_PATH!);
    const file = mountsOf(temporal).find((v) => v.target === target)?.source;
    assert.ok(file, `a file is mounted at ${target}`);
    assert.equal(realpathSync(resolve(dockerDir, file)), join(realpathSync(dockerDir), 'temporal-dynamic-config.yaml'));
    const dynamicConfig = parseYaml<Record<string, { value: unknown; constraints?: { taskQueueName?: string } }[]>>(readFileSync(join(dockerDir, 'temporal-dynamic-config.yaml'), 'utf8'));
    for (const key of ['matching.numTaskqueueReadPartitions', 'matching.numTaskqueueWritePartitions']) {
      const byQueue = Object.fromEntries((dynamicConfig[key] ?? []).map((entry) => [entry.constraints?.taskQueueName, entry.value]));
      assert.deepEqual(byQueue, Object.fromEntries(TASK_QUEUES.map((name) => [name, 1])), key);
    }
  });
});
