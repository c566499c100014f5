/**
 * temporal-ml's command line: start or attach to runs and follow them with a live progress bar.
 *
 *   npm run cli -- train '<trainModel input JSON>' [--id <workflow id>]
 *   npm run cli -- pipeline '<mlPipeline input JSON>' [--id <workflow id>]
 *   npm run cli -- watch <workflow id>
 */
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { temporalConnectConfig } from '../workers/connection';
import { mlPipeline, progressQuery, trainingProgressQuery, trainModel } from '../workflows';
import { renderTrainingProgress } from './progress-bar';

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

function endLine(): void {
  if (interactive && lastLine) process.stdout.write('\n');
  lastLine = '';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function follow(client: Client, workflowId: string): Promise<unknown> {
  const handle = client.workflow.getHandle(workflowId);
  const { type } = await handle.describe();
  const result = handle.result();
  let finished = false;
  void result.finally(() => (finished = true)).catch(() => undefined);
  if (type === 'mlPipeline') {
    console.log(`Following mlPipeline ${workflowId}`);
    while (!finished) {
      const p = await handle.query(progressQuery).catch(() => undefined);
      if (p?.stage === 'training') break;
      if (p) show(p.stage === 'preprocessing' ? `preprocessing: ${p.batchesDone}/${p.batchesTotal} batches` : p.stage);
      await sleep(POLL_MS);
    }
    endLine();
    if (!finished) await followTraining(client.workflow.getHandle(`${workflowId}-train`));
  } else if (type === 'trainModel') {
    console.log(`Following trainModel ${workflowId}`);
    await followTraining(handle);
  } else {
    console.log(`Waiting for ${type} ${workflowId}…`);
  }
  return result;
}

async function followTraining(handle: WorkflowHandle): Promise<void> {
  for (;;) {
    const progress = await handle.query(trainingProgressQuery).catch((err) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
    if (progress) show(renderTrainingProgress(progress));
    if (progress?.stage === 'done') break;
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') break;
    await sleep(POLL_MS);
  }
  endLine();
}

function option(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

async function main(): Promise<void> {
  const [command, argument] = process.argv.slice(2);
  const { connectionOptions, namespace } = temporalConnectConfig();
  const connection = await Connection.connect(connectionOptions);
  const client = new Client({ connection, namespace });
  try {
    let workflowId: string;
    if (command === 'train' || command === 'pipeline') {
      const input = JSON.parse(argument ?? '{}');
      workflowId = option('--id') ?? `${command}-${Date.now()}`;
      const workflow = command === 'train' ? trainModel : mlPipeline;
      await client.workflow.start(workflow, { taskQueue: 'ml-pipeline', workflowId, args: [input] });
      console.log(`Started ${workflow.name} ${workflowId}`);
    } else if (command === 'watch' && argument) {
      workflowId = argument;
    } else {
      console.error("usage: cli train '<json>' [--id ID] | cli pipeline '<json>' [--id ID] | cli watch <workflow id>");
      process.exitCode = 2;
      return;
    }
    const result = await follow(client, workflowId);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await connection.close();
  }
}

main().catch((err) => {
  endLine();
  console.error(err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : err);
  process.exit(1);
});
