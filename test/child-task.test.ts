import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runChildTask } from '../lib/child-task';
import { oneThreadPerOp } from '../lib/tf';

describe('child tasks', () => {
  it('get the worker’s environment without its credentials: Temporal connection settings, key file and AWS keys stay in the worker', async () => {
    const secrets = {
      TEMPORAL_ADDRESS: 'ml.a1b2c.tmprl.cloud:7233',
      TEMPORAL_API_KEY: 'test-api-key',
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/temporal/tls/client.pem',
      TEMPORAL_TLS_CLIENT_KEY_PATH: '/etc/temporal/tls/client.key',
      TEMPORAL_ML_ENCRYPTION_KEY_FILE: '/etc/temporal-ml/keys.json',
      AWS_ACCESS_KEY_ID: 'AKIATEST',
      AWS_SECRET_ACCESS_KEY: 'test-secret',
      AWS_SESSION_TOKEN: 'test-token',
    };
    const settings = { TEMPORAL_ML_WARM_CHILD_CACHE_MB: '64', TF_CPP_MIN_LOG_LEVEL: '2' };
    Object.assign(process.env, secrets, settings);
    const names = [...Object.keys(secrets), ...Object.keys(settings)];
    const seen = await runChildTask<string[], never, Record<string, string | undefined>>(join(__dirname, 'helpers', 'environment-child-task.js'), names);
    assert.deepEqual(seen, { ...Object.fromEntries(Object.keys(secrets).map((name) => [name, undefined])), ...settings });
  });

  it('do not get the object store credentials in their environment (a child that needs them gets them in its task message)', async () => {
    const aws = { AWS_ACCESS_KEY_ID: 'test-access-key', AWS_SECRET_ACCESS_KEY: 'test-secret-key', AWS_SESSION_TOKEN: 'test-session-token', AWS_REGION: 'eu-west-1' };
    const saved = { ...process.env };
    Object.assign(process.env, aws);
    try {
      const seen = await runChildTask<string[], never, Record<string, string | undefined>>(join(__dirname, 'helpers', 'environment-child-task.js'), Object.keys(aws));
      assert.deepEqual(seen, { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SESSION_TOKEN: undefined, AWS_REGION: 'eu-west-1' });
    } finally {
      process.env = saved;
    }
  });

  it('load no AWS SDK on a local artifact store: training, evaluation and averaging jobs start without it', () => {
    const jobs = ['../lib/training/train-job', '../lib/evaluation/evaluate-job', '../lib/distributed/average-job'].map((job) => require.resolve(job));
    const script = `${jobs.map((job) => `require(${JSON.stringify(job)});`).join('')} console.log(Object.keys(require.cache).filter((m) => m.includes('@aws-sdk')).length)`;
    const { stdout, status } = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } });
    assert.equal(status, 0);
    assert.equal(stdout.trim(), '0');
  });

  it('do not inherit the one op thread a preprocessing worker runs TensorFlow with, but do inherit a thread count the user set', async () => {
    const saved = { ...process.env };
    const names = ['TF_NUM_INTRAOP_THREADS', 'TEMPORAL_ML_ONE_THREAD_PER_OP'];
    const child = () => runChildTask<string[], never, Record<string, string | undefined>>(join(__dirname, 'helpers', 'environment-child-task.js'), names);
    try {
      delete process.env.TF_NUM_INTRAOP_THREADS;
      oneThreadPerOp();
      assert.equal(process.env.TF_NUM_INTRAOP_THREADS, '1');
      assert.deepEqual(await child(), { TF_NUM_INTRAOP_THREADS: undefined, TEMPORAL_ML_ONE_THREAD_PER_OP: undefined });

      // A user's own count stands, even beside a marker inherited from a process that chose one thread per op.
      for (const marker of [undefined, '1']) {
        process.env = { ...saved, TF_NUM_INTRAOP_THREADS: '3', ...(marker ? { TEMPORAL_ML_ONE_THREAD_PER_OP: marker } : {}) };
        oneThreadPerOp();
        assert.equal(process.env.TF_NUM_INTRAOP_THREADS, '3', "the user's setting stands");
        assert.deepEqual(await child(), { TF_NUM_INTRAOP_THREADS: '3', TEMPORAL_ML_ONE_THREAD_PER_OP: undefined });
      }
    } finally {
      process.env = saved;
      // Reassigning process.env does not unset what was set in the real environment.
      delete process.env.TF_NUM_INTRAOP_THREADS;
      delete process.env.TEMPORAL_ML_ONE_THREAD_PER_OP;
      Object.assign(process.env, saved);
    }
  });
});
