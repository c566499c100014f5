/** For tests and benchmarks: a Temporal dev server and workers in the calling process. */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { join } from 'node:path';
import * as activities from '../activities';
import type { TaskQueue } from '../lib/config';
import { dataConverterFromEnvironment } from '../lib/encryption/data-converter';
import { SEARCH_ATTRIBUTES } from '../lib/search-attributes';
import { oneThreadPerOp } from '../lib/tf';
import { devServerDynamicConfigArgs } from '../scripts/dev-server';
import { ensureTemporalCli } from '../scripts/temporal-cli';

/**
 * A real Temporal dev server (the provisioned `temporal` CLI) on a free port, with the project's search attributes and
 * dev-server dynamic config.
 * Its client encrypts payloads when TEMPORAL_ML_ENCRYPTION_KEY_FILE is set, like every client of the project.
 */
export function startTemporal(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: ensureTemporalCli() },
      searchAttributes: SEARCH_ATTRIBUTES,
      extraArgs: devServerDynamicConfigArgs(),
    },
    client: { dataConverter: dataConverterFromEnvironment() },
  });
}

export interface InProcessWorkers {
  shutdown(): Promise<void>;
}

/** Workers in this process: workflows on `ml-pipeline`, activities on the other queues named. */
export async function runWorkersInProcess(env: TestWorkflowEnvironment, queues: TaskQueue[], options: { trainSlots?: number } = {}): Promise<InProcessWorkers> {
  // As a worker process does (see workers/main.ts); without effect once TensorFlow has loaded here.
  if (queues.includes('ml-cpu')) oneThreadPerOp();
  const dataConverter = dataConverterFromEnvironment();
  const workers = await Promise.all(
    queues.map((taskQueue) =>
      taskQueue === 'ml-pipeline'
        ? Worker.create({ connection: env.nativeConnection, taskQueue, dataConverter, workflowBundle: { codePath: join(__dirname, '..', 'workflow-bundle.js') } })
        : Worker.create({ connection: env.nativeConnection, taskQueue, dataConverter, activities, maxConcurrentActivityTaskExecutions: taskQueue === 'ml-train' ? options.trainSlots : undefined }),
    ),
  );
  const running = Promise.all(workers.map((w) => w.run()));
  return {
    async shutdown() {
      workers.forEach((w) => w.shutdown());
      await running;
    },
  };
}

