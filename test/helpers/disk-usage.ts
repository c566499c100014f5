import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Sync reads of /proc and of a folder that files come and go in: a file gone between listing and reading counts as nothing. */
export function orNothing<T>(read: () => T, nothing: T): T {
  try {
    return read();
  } catch (err) {
    if (['ENOENT', 'ESRCH', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) return nothing;
    throw err;
  }
}

/** `pid` and every process descended from it (Linux: /proc/<pid>/task/<tid>/children). */
function processTree(pid: number): number[] {
  const tasks = orNothing(() => readdirSync(`/proc/${pid}/task`), []);
  const children = tasks.flatMap((tid) => orNothing(() => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8'), '').split(' ').filter(Boolean).map(Number));
  return [pid, ...children.flatMap(processTree)];
}

/**
 * What the files under `dir` take on disk: those it lists, and those removed from it that `pid` or a process descended
 * from it still holds open (their space is freed only when the last descriptor closes). Each file counts once, by inode.
 */
export function diskBytesUnder(dir: string, pid: number): number {
  const sizes = new Map<string, number>();
  const add = (path: string) => {
    const info = orNothing(() => statSync(path), undefined);
    if (info?.isFile()) sizes.set(`${info.dev}:${info.ino}`, info.size);
  };
  for (const entry of orNothing(() => readdirSync(dir, { recursive: true, withFileTypes: true }), [])) add(join(entry.parentPath, entry.name));
  for (const process of processTree(pid)) {
    for (const fd of orNothing(() => readdirSync(`/proc/${process}/fd`), [])) {
      const target = orNothing(() => readlinkSync(`/proc/${process}/fd/${fd}`), '');
      if (target.startsWith(`${dir}/`) && target.endsWith(' (deleted)')) add(`/proc/${process}/fd/${fd}`);
    }
  }
  return [...sizes.values()].reduce((a, b) => a + b, 0);
}
