import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { userCacheDir } from './cache';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function cachedCliPath(): string {
  return join(userCacheDir(), 'bin', 'temporal');
}

/** `$TEMPORAL_CLI`, then `temporal` on PATH, then the project's user cache. */
export function findTemporalCli(): string | undefined {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`TEMPORAL_CLI=${fromEnv} is not an executable file.`);
    return fromEnv;
  }
  return onPath('temporal') ?? (isExecutable(cachedCliPath()) ? cachedCliPath() : undefined);
}

/** Returns the Temporal CLI, building it with `go install` into the user cache when it is nowhere to be found. */
export function ensureTemporalCli(): string {
  const found = findTemporalCli();
  if (found) return found;
  const go = onPath('go');
  if (!go) {
    throw new Error(
      'The Temporal CLI was not found and Go is not installed to build it.\n' +
        'Install it one of these ways, then run the command again:\n' +
        '  - https://docs.temporal.io/cli#install (for example `brew install temporal`), or\n' +
        `  - install Go, then: GOBIN=${join(userCacheDir(), 'bin')} go install ${TEMPORAL_CLI_MODULE}\n` +
        '  - or point TEMPORAL_CLI at an existing binary.',
    );
  }
  const bin = join(userCacheDir(), 'bin');
  mkdirSync(bin, { recursive: true });
  console.error(`Building the Temporal CLI (${TEMPORAL_CLI_MODULE}) into ${bin}; this takes a few minutes once.`);
  const result = spawnSync(go, ['install', TEMPORAL_CLI_MODULE], {
    stdio: 'inherit',
    env: { ...process.env, GOBIN: bin, CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
  });
  if (result.status !== 0 || !isExecutable(cachedCliPath())) {
    throw new Error(`go install ${TEMPORAL_CLI_MODULE} failed (exit ${result.status}); see the output above.`);
  }
  return cachedCliPath();
}

if (require.main === module) {
  const cli = ensureTemporalCli();
  const version = execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`temporal CLI: ${cli} (${version})`);
}
