import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runChildTask } from '../lib/child-task';

describe('child tasks', () => {
  it('see the worker’s Temporal connection settings, API key and TLS paths included', async () => {
    const connection = {
      TEMPORAL_ADDRESS: 'ml.a1b2c.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'ml.a1b2c',
      TEMPORAL_API_KEY: 'test-api-key',
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_CLIENT_CERT_PATH: '/etc/temporal/tls/client.pem',
      TEMPORAL_TLS_CLIENT_KEY_PATH: '/etc/temporal/tls/client.key',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/etc/temporal/tls/ca.pem',
    };
    Object.assign(process.env, connection);
    const seen = await runChildTask<string[], never, Record<string, string | undefined>>(join(__dirname, 'helpers', 'environment-child-task.js'), Object.keys(connection));
    assert.deepEqual(seen, connection);
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
});
