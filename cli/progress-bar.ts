import type { DistributedProgress } from '../workflows/distributed-train';
import type { LiveTrainingProgress } from './training-progress';

const WIDTH = 30;

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** One line describing training progress, with a bar over all epochs. */
export function renderTrainingProgress(p: LiveTrainingProgress): string {
  const c = p.current;
  if (p.stage !== 'training') {
    const last = p.history.at(-1);
    const figures = last ? [`loss ${last.loss.toFixed(4)}`, `acc ${last.accuracy.toFixed(3)}`] : [];
    const resumed = p.resumedFrom.length ? [`resumed ${p.resumedFrom.length}x`] : [];
    return [`[${'█'.repeat(WIDTH)}] 100%`, `epoch ${p.history.length}/${p.epochs}`, ...figures, p.stage, ...resumed].join('  ');
  }
  if (!c) return `${p.stage}: waiting for the first batch…`;
  const done = c.batchesPerEpoch ? ((c.epoch - 1) * c.batchesPerEpoch + c.batch) / (c.epochs * c.batchesPerEpoch) : 0;
  const filled = Math.round(done * WIDTH);
  const parts = [
    `[${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${(done * 100).toFixed(0).padStart(3)}%`,
    `epoch ${c.epoch}/${c.epochs}`,
    `batch ${c.batch}/${c.batchesPerEpoch}`,
  ];
  if (Number.isFinite(c.loss)) parts.push(`loss ${c.loss.toFixed(4)}`);
  if (Number.isFinite(c.accuracy)) parts.push(`acc ${c.accuracy.toFixed(3)}`);
  if (c.samplesPerSecond) parts.push(`${Math.round(c.samplesPerSecond)} samples/s`);
  if (c.etaSeconds !== null) parts.push(`ETA ${duration(c.etaSeconds)}`);
  if (p.attempt > 1) parts.push(`attempt ${p.attempt}`);
  return parts.join('  ');
}

function bar(done: number): string {
  const filled = Math.round(Math.min(1, done) * WIDTH);
  return `[${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${(done * 100).toFixed(0).padStart(3)}%`;
}

/** One line describing a distributedTrain run: a bar over its rounds, its partitions by state, the global model's score. */
export function renderDistributedProgress(p: DistributedProgress): string {
  if (p.stage === 'partitioning') return 'partitioning the training images…';
  const byState = new Map<string, number>();
  for (const { state } of p.partitions) byState.set(state, (byState.get(state) ?? 0) + 1);
  const parts = [
    bar(p.rounds ? p.round / p.rounds : 0),
    `round ${p.round}/${p.rounds} (${p.mode})`,
    `partitions ${[...byState].map(([state, count]) => `${count} ${state}`).join(', ')}`,
  ];
  if (p.validationAccuracy !== null) parts.push(`val acc ${p.validationAccuracy.toFixed(3)}`);
  if (p.validationLoss !== null) parts.push(`val loss ${p.validationLoss.toFixed(4)}`);
  if (p.skippedUpdates) parts.push(`stragglers ${p.skippedUpdates} (last round: ${p.stragglers.join(', ') || 'none'})`);
  if (p.droppedStaleUpdates) parts.push(`dropped stale ${p.droppedStaleUpdates}`);
  if (p.runs > 1) parts.push(`run ${p.runs}`);
  if (p.stage !== 'training') parts.push(p.stage);
  return parts.join('  ');
}
