import { join } from 'node:path';
import { WarmChildPool } from '../../lib/child-task';
import type { WarmProbeInput } from './warm-child-task';

/** Runs one task in a warm child, prints the child's PID, then has nothing left to do: the idle child must not keep it alive. */
void (async () => {
  const pool = new WarmChildPool(join(__dirname, 'warm-child-task.js'), { maxIdle: 1, idleSeconds: 600 });
  const { pid } = await pool.run<WarmProbeInput, number, { pid: number }>({ key: 'a', waitMs: 0 });
  console.log(pid);
})();
