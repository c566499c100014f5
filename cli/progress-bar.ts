import type { TrainModelProgress } from '../workflows/train-model';

const WIDTH = 30;

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** One line describing training progress, with a bar over all epochs. */
export function renderTrainingProgress(p: TrainModelProgress): string {
  if (p.epochs === 0) return `${p.stage}: waiting for the first batch…`;
  const done = p.batchesPerEpoch ? ((p.epoch - 1) * p.batchesPerEpoch + p.batch) / (p.epochs * p.batchesPerEpoch) : 0;
  const filled = Math.round(done * WIDTH);
  const parts = [
    `[${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${(done * 100).toFixed(0).padStart(3)}%`,
    `epoch ${p.epoch}/${p.epochs}`,
    `batch ${p.batch}/${p.batchesPerEpoch}`,
  ];
  if (p.loss !== null) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (p.accuracy !== null) parts.push(`acc ${p.accuracy.toFixed(3)}`);
  if (p.samplesPerSecond) parts.push(`${Math.round(p.samplesPerSecond)} samples/s`);
  if (p.etaSeconds !== null && p.stage === 'training') parts.push(`ETA ${duration(p.etaSeconds)}`);
  if (p.stage !== 'training') parts.push(p.stage);
  if (p.resumedFrom.length) parts.push(`resumed ${p.resumedFrom.length}x`);
  return parts.join('  ');
}
