import { Context } from '@temporalio/activity';
import { artifactStore } from '../lib/artifacts';
import { InvalidDatasetError, readManifest } from '../lib/datasets/manifest';
import { PartitionError, type PartitionSpec } from '../lib/distributed/partition';
import { writePartitions, type PartitionedDataset } from '../lib/distributed/partition-dataset';
import { invalidInput } from '../lib/validate';

export type { DatasetPartition, PartitionedDataset } from '../lib/distributed/partition-dataset';

export interface PartitionDatasetInput {
  manifestUri: string;
  numPartitions: number;
  partition: PartitionSpec;
}

/**
 * Splits a dataset's training images among `numPartitions` partitions, one dataset manifest each, heartbeating after
 * every source shard. The same input gives the same partitions (and, content-addressed, the same URIs).
 */
export async function partitionDataset(input: PartitionDatasetInput): Promise<PartitionedDataset> {
  const context = Context.current();
  const store = artifactStore();
  try {
    const manifest = await readManifest(store, input.manifestUri);
    return await writePartitions(store, manifest, input.numPartitions, input.partition, (done, total) => {
      context.cancellationSignal.throwIfAborted();
      context.heartbeat({ shards: done, of: total });
    });
  } catch (err) {
    if (err instanceof PartitionError) throw invalidInput(err.field, err.problem);
    if (err instanceof InvalidDatasetError) throw invalidInput('manifestUri', err.message);
    throw err;
  }
}
