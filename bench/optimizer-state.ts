/**
 * `node dist/bench/optimizer-state.js`: which trains better in synchronous distributed training, carrying each
 * partition's optimizer state (Adam's moments and step count) across rounds, or a fresh optimizer every round? Runs
 * the real activities in this process (each training job in its own child, as on a worker): FedAvg rounds over IID
 * and Dirichlet(0.5) partitions, and prints the global model's validation accuracy after every round for both.
 *
 * BENCH_DATASET (default builtin:mnist-digits; builtin:fashion-mnist once provisioned), BENCH_IMAGES (5000),
 * BENCH_PARTITIONS (4), BENCH_ROUNDS (8), BENCH_LOCAL_STEPS (40).
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { aggregateWeights, evaluateModel, listDataset, partitionDataset, preprocessBatch, trainPartition, writeManifest, type OptimizerStatePolicy, type TrainPartitionResult } from '../activities';
import type { PartitionSpec } from '../lib/distributed/partition';
import { modelSpecSchema, trainingSpecSchema } from '../lib/schemas/model';
import { preprocessDatasetInputSchema } from '../lib/schemas/preprocess-dataset';

const DATASET = process.env.BENCH_DATASET ?? 'builtin:mnist-digits';
const IMAGES = Number(process.env.BENCH_IMAGES ?? 5000);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const LOCAL_STEPS = Number(process.env.BENCH_LOCAL_STEPS ?? 40);
const MODEL = modelSpecSchema.parse({ architecture: 'mlp', hiddenUnits: [128], dropout: 0.1 });
const TRAINING = trainingSpecSchema.parse({ epochs: 1, batchSize: 32, learningRate: 0.001, earlyStopping: null });

const activity = <P extends unknown[], R>(fn: (...args: P) => Promise<R>, ...args: P) => new MockActivityEnvironment().run(fn, ...args) as Promise<R>;

async function preprocess(): Promise<string> {
  const { dataset, preprocess: spec, batching } = preprocessDatasetInputSchema.parse({ dataset: { source: DATASET, maxImages: IMAGES }, batching: { size: 2000 } });
  const listing = await activity(listDataset, { dataset, spec, batching });
  for (let batch = 0; batch < listing.batches; batch++) await activity(preprocessBatch, { listingUri: listing.listingUri, batch, spec });
  return (await activity(writeManifest, { listingUri: listing.listingUri, spec })).manifestUri;
}

/** Validation accuracy of the global model after each round. */
async function federatedRounds(manifestUri: string, partitions: string[], optimizerState: OptimizerStatePolicy): Promise<number[]> {
  let globalModelUri: string | null = null;
  const states: (string | null)[] = partitions.map(() => null);
  const accuracies: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const updates = [];
    for (const [partition, partitionManifest] of partitions.entries()) {
      const trained: TrainPartitionResult = await activity(trainPartition, {
        modelName: 'bench-optimizer-state',
        round,
        partition,
        manifestUri: partitionManifest,
        globalModelUri,
        model: MODEL,
        training: TRAINING,
        localSteps: LOCAL_STEPS,
        optimizerStateUri: states[partition]!,
        optimizerState,
      });
      states[partition] = trained.optimizerStateUri;
      updates.push({ modelUri: trained.modelUri, samples: trained.samples });
    }
    globalModelUri = (await activity(aggregateWeights, { updates })).modelUri;
    accuracies.push((await activity(evaluateModel, { modelName: 'bench-optimizer-state', modelUri: globalModelUri, manifestUri, split: 'validation' })).accuracy);
    console.log(`  ${optimizerState} round ${round + 1}: ${(accuracies.at(-1)! * 100).toFixed(2)}%`);
  }
  return accuracies;
}

async function main(): Promise<void> {
  const manifestUri = await preprocess();
  const splits: [string, PartitionSpec][] = [
    ['IID', { strategy: 'iid', alpha: 0.5, seed: 0 }],
    ['Dirichlet(0.5)', { strategy: 'dirichlet', alpha: 0.5, seed: 0 }],
  ];
  console.log(`${DATASET}, ${IMAGES} images, ${PARTITIONS} partitions, ${ROUNDS} rounds of ${LOCAL_STEPS} local steps (batch ${TRAINING.batchSize}, Adam ${TRAINING.learningRate}), MLP [128]`);
  const rows: string[] = [];
  for (const [name, partition] of splits) {
    const { partitions } = await activity(partitionDataset, { manifestUri, numPartitions: PARTITIONS, partition });
    const uris = partitions.map((p) => p.manifestUri);
    const reset = await federatedRounds(manifestUri, uris, 'reset');
    const carry = await federatedRounds(manifestUri, uris, 'carry');
    for (let round = 0; round < ROUNDS; round++) {
      rows.push(`| ${name} | ${round + 1} | ${(reset[round]! * 100).toFixed(2)}% | ${(carry[round]! * 100).toFixed(2)}% |`);
    }
  }
  console.log('\n| partitions | round | reset | carry |\n|---|---|---|---|');
  console.log(rows.join('\n'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
