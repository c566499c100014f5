import type { Client, WorkflowHandle } from '@temporalio/client';
import { compressionProgressQuery, distributedProgressQuery, preprocessProgressQuery, progressQuery, type CompressionProgress, type PreprocessProgress } from '../workflows';
import { renderDistributedProgress, renderTrainingProgress } from './progress-bar';
import { trainingProgress } from './training-progress';

const POLL_MS = 500;
const interactive = process.stdout.isTTY;
let lastLine = '';

/** Redraws the line in a terminal; elsewhere (logs, CI) prints each new state once. */
function show(line: string): void {
  if (line === lastLine) return;
  lastLine = line;
  if (interactive) process.stdout.write(`\r\x1b[2K${line}`);
  else console.log(line);
}

export function endLine(): void {
  if (interactive && lastLine) process.stdout.write('\n');
  lastLine = '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Shows a run's progress until it ends (for mlPipeline, its preprocessing, training and compression children); returns its result. */
export async function followRun(client: Client, workflowId: string): Promise<unknown> {
  const handle = client.workflow.getHandle(workflowId);
  const { type } = await handle.describe();
  const result = handle.result();
  let finished = false;
  void result.finally(() => (finished = true)).catch(() => undefined);
  if (type === 'mlPipeline') {
    console.log(`Following mlPipeline ${workflowId}`);
    let distributed = false;
    while (!finished) {
      const p = await handle.query(progressQuery).catch(() => undefined);
      distributed = p?.distributed ?? false;
      if (p?.stage === 'training') break;
      if (p?.stage === 'preprocessing') {
        const pre = await client.workflow.getHandle(p.preprocessWorkflowId).query(preprocessProgressQuery).catch(() => undefined);
        show(pre ? describePreprocessing(pre) : 'preprocessing');
      } else if (p) show(p.stage);
      await sleep(POLL_MS);
    }
    endLine();
    if (!finished) await (distributed ? followDistributed : followTraining)(client, `${workflowId}-train`, handle);
    if (!finished) await followCompression(client, `${workflowId}-compress`, () => finished);
  } else if (type === 'preprocessDataset') {
    console.log(`Following preprocessDataset ${workflowId}`);
    while (!finished) {
      const p = await handle.query(preprocessProgressQuery).catch(() => undefined);
      if (p) show(describePreprocessing(p));
      await sleep(POLL_MS);
    }
    endLine();
  } else if (type === 'compressModel') {
    console.log(`Following compressModel ${workflowId}`);
    await followCompression(client, workflowId, () => finished);
  } else if (type === 'trainModel') {
    console.log(`Following trainModel ${workflowId}`);
    await followTraining(client, workflowId);
  } else if (type === 'distributedTrain') {
    console.log(`Following distributedTrain ${workflowId}`);
    await followDistributed(client, workflowId);
  } else {
    console.log(`Waiting for ${type} ${workflowId}…`);
  }
  return result;
}

function describePreprocessing(p: PreprocessProgress): string {
  if (p.stage !== 'preprocessing') return p.stage;
  const cached = p.cacheHits ? `, ${p.cacheHits} reused from the cache` : '';
  return `preprocessing: ${p.batchesDone}/${p.batchesTotal} batches, ${p.imagesDone}/${p.imagesTotal} images, ${p.leftOut} left out${cached}`;
}

function describeCompression(p: CompressionProgress): string {
  if (p.stage !== 'compressing') return `compression: ${p.stage}`;
  return `compression: ${p.variants.map((v) => `${v.variant} ${v.status}`).join(', ')}`;
}

/** Shows a compressModel run's variants (pending, running, done, failed) until `finished()` or the run stops running. */
export async function followCompression(client: Client, workflowId: string, finished: () => boolean): Promise<void> {
  const handle = client.workflow.getHandle(workflowId);
  while (!finished()) {
    const progress = await handle.query(compressionProgressQuery).catch(() => undefined);
    if (progress) show(describeCompression(progress));
    if (progress?.stage === 'done') break;
    await sleep(POLL_MS);
  }
  endLine();
}

/**
 * Shows a trainModel run's progress until it is done or stops running. With `parent` (the mlPipeline that starts it),
 * a run that does not exist yet is waited for while the parent runs.
 */
export async function followTraining(client: Client, workflowId: string, parent?: WorkflowHandle): Promise<void> {
  for (;;) {
    const progress = await trainingProgress(client, workflowId);
    show(progress ? renderTrainingProgress(progress) : 'training: waiting for the run to start…');
    if (progress?.stage === 'done') break;
    const running = progress || !parent ? client.workflow.getHandle(workflowId) : parent;
    if ((await running.describe()).status.name !== 'RUNNING') break;
    await sleep(POLL_MS);
  }
  endLine();
}

/** Shows a distributedTrain run's rounds until it stops running (across continue-as-new); `parent` as for followTraining. */
export async function followDistributed(client: Client, workflowId: string, parent?: WorkflowHandle): Promise<void> {
  for (;;) {
    const handle = client.workflow.getHandle(workflowId);
    const progress = await handle.query(distributedProgressQuery).catch(() => undefined);
    show(progress ? renderDistributedProgress(progress) : 'distributed training: waiting for the run to start…');
    if (progress?.stage === 'done') break;
    const running = progress || !parent ? handle : parent;
    if ((await running.describe()).status.name !== 'RUNNING') break;
    await sleep(POLL_MS);
  }
  endLine();
}
