import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Per-user cache for provisioned tools (the Temporal CLI, native TensorFlow). It lives outside the clone,
 * so a fresh clone on the same machine reuses what an earlier one built.
 */
export function userCacheDir(): string {
  const base = process.env.TEMPORAL_ML_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'temporal-ml');
  return base;
}
