import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadSettings } from '../lib/config';
import { registry } from '../lib/metrics';

describe('metrics endpoints', () => {
  it('the README documents every metric the project registers', async () => {
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name).filter((name) => !/^(process|nodejs)_/.test(name));
    assert.ok(names.length > 0);
    assert.deepEqual(names.filter((name) => !readme.includes(`| \`${name}\``)), []);
  });

  it('bind to the loopback interface unless METRICS_HOST says otherwise', () => {
    const saved = process.env.METRICS_HOST;
    try {
      delete process.env.METRICS_HOST;
      assert.equal(loadSettings().metricsHost, '127.0.0.1');
      process.env.METRICS_HOST = '0.0.0.0';
      assert.equal(loadSettings().metricsHost, '0.0.0.0');
    } finally {
      if (saved === undefined) delete process.env.METRICS_HOST;
      else process.env.METRICS_HOST = saved;
    }
  });
});
