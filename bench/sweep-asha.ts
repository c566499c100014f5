/**
 * `npm run bench:asha`: one search space on Fashion-MNIST, swept as a full grid (every trial to maxEpochs) and with
 * ASHA, side by side on a Temporal dev server. Prints each one's best validation accuracy, the difference in
 * percentage points and the trial-epochs each used. Targets: ASHA within 0.5 pp of the grid's best with at most 40% of
 * its trial-epochs. BENCH_TRAIN_IMAGES (10,000) and BENCH_EVAL_IMAGES (2,000) subsample the training split and the
 * validation and test splits, so the pair runs in about 20 minutes on an idle 2-core machine.
 */
import { availableParallelism, loadavg } from 'node:os';
import { resolve } from 'node:path';
import type { HyperparameterSweepInput } from '../lib/schemas/hyperparameter-sweep';
import { runWorkersInProcess, startTemporal } from '../workers/in-process';
import { hyperparameterSweep, type HyperparameterSweepResult } from '../workflows';
import { fashionMnistManifest } from './fashion-mnist';

const TRAIN_IMAGES = Number(process.env.BENCH_TRAIN_IMAGES ?? 10_000);
const EVAL_IMAGES = Number(process.env.BENCH_EVAL_IMAGES ?? 2_000);
const MAX_EPOCHS = 9;
const ASHA = { maxEpochs: MAX_EPOCHS, gracePeriod: 1, reductionFactor: 3 };
/** 12 trials: learning rates from slow to fast, a narrow and a wide MLP, with and without dropout. */
const SPACE = { 'training.learningRate': [0.0005, 0.002, 0.008], 'model.hiddenUnits': [[64], [256]], 'model.dropout': [0, 0.3] };
const BASE = { model: { architecture: 'mlp' }, training: { batchSize: 128, earlyStopping: null } };
const MAX_DIFFERENCE_PP = 0.5;
const MAX_EPOCH_RATIO = 0.4;

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

async function main(): Promise<void> {
  const started = performance.now();
  const dir = resolve(process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist');
  const manifestUri = await fashionMnistManifest(dir, { limits: { train: TRAIN_IMAGES, validation: EVAL_IMAGES, test: EVAL_IMAGES } });
  const env = await startTemporal();
  const workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu', 'ml-train'], { trainSlots: 4 });
  console.log(`Fashion-MNIST, ${TRAIN_IMAGES} training and ${EVAL_IMAGES} validation images; ${availableParallelism()} cores; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`Space ${JSON.stringify(SPACE)}, MLP, batch 128; grid: every trial ${MAX_EPOCHS} epochs; ASHA ${JSON.stringify(ASHA)}\n`);
  try {
    const sweep = async (name: string, input: Partial<HyperparameterSweepInput>): Promise<HyperparameterSweepResult> => {
      const handle = await env.client.workflow.start(hyperparameterSweep, {
        taskQueue: 'ml-pipeline',
        workflowId: `bench-${name}-${Date.now()}`,
        args: [{ manifestUri, base: BASE, space: SPACE, parallelism: 2, ...input }],
      });
      return handle.result();
    };
    const [grid, asha] = await Promise.all([
      sweep('grid', { base: { ...BASE, training: { ...BASE.training, epochs: MAX_EPOCHS } } }),
      sweep('asha', { search: 'asha', asha: ASHA }),
    ]);
    const difference = (grid.best.score! - asha.best.score!) * 100;
    const ratio = asha.trialEpochs / grid.trialEpochs;
    const describe = (r: HyperparameterSweepResult) => `${pct(r.best.score!)} (trial ${r.best.trial}, ${JSON.stringify(r.best.assignment)}, ${r.best.epochs} epochs)`;
    console.log(`grid  best validation accuracy ${describe(grid)}, ${grid.trialEpochs} trial-epochs over ${grid.total} trials`);
    console.log(`ASHA  best validation accuracy ${describe(asha)}, ${asha.trialEpochs} trial-epochs; rungs ${asha.rungs!.map((r) => `${r.epochs} epochs: ${r.trials} trials`).join(', ')}`);
    console.log(`difference ${difference.toFixed(2)} pp (target <= ${MAX_DIFFERENCE_PP}): ${difference <= MAX_DIFFERENCE_PP ? 'met' : 'missed'}`);
    console.log(`trial-epochs ASHA / grid ${asha.trialEpochs} / ${grid.trialEpochs} = ${(ratio * 100).toFixed(1)}% (target <= ${MAX_EPOCH_RATIO * 100}%): ${ratio <= MAX_EPOCH_RATIO ? 'met' : 'missed'}`);
    console.log(`\n${((performance.now() - started) / 60_000).toFixed(1)} minutes; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  } finally {
    await workers.shutdown();
    await env.teardown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
