import { execFileSync } from 'node:child_process';
import { ensureGoTool, findGoTool, type GoTool } from './go-tools';

export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

const TEMPORAL_CLI: GoTool = {
  name: 'temporal',
  title: 'The Temporal CLI',
  module: TEMPORAL_CLI_MODULE,
  envVar: 'TEMPORAL_CLI',
  otherwise: 'https://docs.temporal.io/cli#install (for example `brew install temporal`)',
};

/** `$TEMPORAL_CLI`, then `temporal` on PATH, then the project's user cache. */
export function findTemporalCli(): string | undefined {
  return findGoTool(TEMPORAL_CLI);
}

/** Returns the Temporal CLI, building it with `go install` into the user cache when it is nowhere to be found. */
export function ensureTemporalCli(): string {
  return ensureGoTool(TEMPORAL_CLI);
}

if (require.main === module) {
  const cli = ensureTemporalCli();
  const version = execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`temporal CLI: ${cli} (${version})`);
}
