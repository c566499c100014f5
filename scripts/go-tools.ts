import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { userCacheDir } from './cache';

/** A command-line tool the project builds from a pinned Go module when it is not installed. */
export interface GoTool {
  /** The binary's name. */
  name: string;
  /** What people call it in messages. */
  title: string;
  /** `module/path/cmd@version`, pinned. */
  module: string;
  /** An environment variable that points at an existing binary instead. */
  envVar: string;
  /** How else to get it, for the message when Go is missing. */
  otherwise: string;
}

export function isExecutable(path: string): boolean {
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

const cachedPath = (tool: GoTool) => join(userCacheDir(), 'bin', tool.name);

/** `$<envVar>`, then the tool on PATH, then the project's user cache. */
export function findGoTool(tool: GoTool): string | undefined {
  const fromEnv = process.env[tool.envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`${tool.envVar}=${fromEnv} is not an executable file.`);
    return fromEnv;
  }
  return onPath(tool.name) ?? (isExecutable(cachedPath(tool)) ? cachedPath(tool) : undefined);
}

/** Returns the tool, building it with `go install` into the user cache when it is nowhere to be found. */
export function ensureGoTool(tool: GoTool): string {
  const found = findGoTool(tool);
  if (found) return found;
  const bin = join(userCacheDir(), 'bin');
  const go = onPath('go');
  if (!go) {
    throw new Error(
      `${tool.title} was not found and Go is not installed to build it.\n` +
        'Install it one of these ways, then run the command again:\n' +
        `  - ${tool.otherwise}, or\n` +
        `  - install Go, then: GOBIN=${bin} go install ${tool.module}\n` +
        `  - or point ${tool.envVar} at an existing binary.`,
    );
  }
  mkdirSync(bin, { recursive: true });
  console.error(`Building ${tool.title} (${tool.module}) into ${bin}; this takes a few minutes once.`);
  const result = spawnSync(go, ['install', tool.module], {
    stdio: 'inherit',
    env: { ...process.env, GOBIN: bin, CGO_ENABLED: process.env.CGO_ENABLED ?? '0' },
  });
  if (result.status !== 0 || !isExecutable(cachedPath(tool))) {
    throw new Error(`go install ${tool.module} failed (exit ${result.status}); see the output above.`);
  }
  return cachedPath(tool);
}
