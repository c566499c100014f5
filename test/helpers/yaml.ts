import { spawnSync } from 'node:child_process';

/** Parses YAML with PyYAML, which Debian's docker-compose depends on (scripts/provision-test-tools.sh installs it). */
export function parseYaml<T>(text: string): T {
  const json = spawnSync('python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: text, encoding: 'utf8' });
  if (json.status !== 0) throw new Error(`python3 could not parse YAML: ${json.stderr}`);
  return JSON.parse(json.stdout) as T;
}
