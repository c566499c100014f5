import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseYaml } from './helpers/yaml';

const dockerDir = join(__dirname, '..', '..', 'docker');
const promtool = spawnSync('promtool', ['--version']).status === 0;
const skip = promtool ? false : 'promtool is not installed (scripts/provision-test-tools.sh installs prometheus, which ships it)';

interface RuleTests {
  rule_files: string[];
  tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
}

function alertNames(): string[] {
  const rules = parseYaml<{ groups: { rules: { alert?: string }[] }[] }>(readFileSync(join(dockerDir, 'alerts.yml'), 'utf8'));
  return rules.groups.flatMap((group) => group.rules.flatMap((rule) => (rule.alert ? [rule.alert] : [])));
}

describe('docker/alerts.yml (promtool)', { skip }, () => {
  it('is loaded by docker/prometheus.yml, which promtool finds valid', () => {
    const check = spawnSync('promtool', ['check', 'config', join(dockerDir, 'prometheus.yml')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /SUCCESS: 1 rule files found/);
    assert.match(check.stdout, new RegExp(`Checking .*alerts\\.yml\\n\\s+SUCCESS: ${alertNames().length} rules found`));
  });

  it('fires each alert when its condition holds long enough, and not otherwise (promtool test rules)', () => {
    const testFile = join(dockerDir, 'alerts.test.yml');
    const ruleTests = parseYaml<RuleTests>(readFileSync(testFile, 'utf8'));
    assert.deepEqual(ruleTests.rule_files, ['alerts.yml']);
    const cases = ruleTests.tests.flatMap((test) => test.alert_rule_test);
    for (const alert of alertNames()) {
      assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert} has a case where it fires`);
      assert.ok(cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0), `${alert} has a case where it does not`);
    }
    const run = spawnSync('promtool', ['test', 'rules', testFile], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /SUCCESS/);
  });
});
