/**
 * temporal-ml's command line: start or attach to runs and follow them with a live progress bar.
 *
 *   npm run cli -- train '<trainModel input JSON>' [--id <workflow id>]
 *   npm run cli -- distributed '<distributedTrain input JSON>' [--id <workflow id>]
 *   npm run cli -- pipeline '<mlPipeline input JSON>' [--id <workflow id>]
 *   npm run cli -- preprocess '<preprocessDataset input JSON>' [--id <workflow id>]
 *   npm run cli -- compress '<compressModel input JSON>' [--id <workflow id>]
 *   npm run cli -- watch <workflow id>
 *   npm run cli -- registry list | show <name> | promote <name> <version> [--force --reason <why>] | rollback <name>
 *   npm run cli -- report <workflow id>
 *   npm run cli -- gc [--older-than 7d] [--dry-run]
 *   npm run cli -- artifact get <artifact:// URI> <destination>
 *   npm run cli -- dataset upload <folder> <s3://bucket/prefix>
 *   npm run cli -- schedule create|list|describe|pause|unpause|trigger|backfill|delete …   (see ./schedule.ts)
 */
import { Client, Connection } from '@temporalio/client';
import { dataConverterFromEnvironment } from '../lib/encryption/data-converter';
import { temporalConnectConfig } from '../workers/connection';
import { connectExplained } from '../workers/connection-failure';
import { compressModel, distributedTrain, mlPipeline, preprocessDataset, trainModel } from '../workflows';
import { endLine, followRun } from './follow';
import { ScheduleArgumentError } from '../lib/schedule-spec';
import { runScheduleCommand, SCHEDULE_USAGE } from './schedule';
import { registryCommand, REGISTRY_USAGE } from './registry';
import { printReport, runReport } from './report';
import { ARTIFACT_USAGE, DATASET_USAGE, artifactCommand, datasetCommand } from './artifacts';
import { gcCommand, GC_USAGE, parseGcOptions } from './gc';
import { OptionError } from '../lib/gc/duration';

/** The Markdown compression table of a compressModel result, or of an mlPipeline result's compression stage. */
function compressionTableOf(result: unknown): string | undefined {
  const fields = result as { markdown?: unknown; compression?: { markdown?: unknown } | null };
  const markdown = fields.markdown ?? fields.compression?.markdown;
  return typeof markdown === 'string' ? markdown : undefined;
}

function option(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

/** Commands that talk to the artifact store or object storage only, not to Temporal. */
async function storageCommand(command: string | undefined, args: string[]): Promise<boolean> {
  const commands = { artifact: [artifactCommand, ARTIFACT_USAGE], dataset: [datasetCommand, DATASET_USAGE] } as const;
  if (command !== 'artifact' && command !== 'dataset') return false;
  const [run, usage] = commands[command];
  if (!(await run(args, (line) => console.log(line)))) {
    console.error(`usage: cli ${usage}`);
    process.exitCode = 2;
  }
  return true;
}

async function main(): Promise<void> {
  const [command, argument] = process.argv.slice(2);
  if (await storageCommand(command, process.argv.slice(3))) return;
  // Options are checked before connecting, so a mistyped one is reported as such even with no server up.
  const gcOptions = command === 'gc' ? parseGcOptions(process.argv.slice(3)) : undefined;
  const config = temporalConnectConfig();
  const dataConverter = dataConverterFromEnvironment();
  const connection = await connectExplained(config, () => Connection.connect(config.connectionOptions));
  const namespace = config.namespace;
  const client = new Client({ connection, namespace, dataConverter });
  try {
    if (command === 'schedule') {
      await runScheduleCommand(client, process.argv.slice(3), (line) => console.log(line));
      return;
    }
    if (gcOptions) {
      await gcCommand(client, gcOptions, (line) => console.log(line));
      return;
    }
    if (command === 'registry') {
      if (!(await registryCommand(client, process.argv.slice(3)))) {
        console.error(`usage: ${REGISTRY_USAGE}`);
        process.exitCode = 2;
      }
      return;
    }
    let workflowId: string;
    const workflows = { train: trainModel, distributed: distributedTrain, pipeline: mlPipeline, preprocess: preprocessDataset, compress: compressModel } as const;
    if (command && command in workflows) {
      const input = JSON.parse(argument ?? '{}');
      workflowId = option('--id') ?? `${command}-${Date.now()}`;
      const workflow = workflows[command as keyof typeof workflows];
      await client.workflow.start(workflow as typeof mlPipeline, { taskQueue: 'ml-pipeline', workflowId, args: [input] });
      console.log(`Started ${workflow.name} ${workflowId}`);
    } else if (command === 'watch' && argument) {
      workflowId = argument;
    } else if (command === 'report' && argument) {
      printReport(argument, await runReport(client, argument));
      return;
    } else {
      console.error(`usage: cli train '<json>' [--id ID] | cli distributed '<json>' [--id ID] | cli pipeline '<json>' [--id ID] | cli preprocess '<json>' [--id ID] | cli compress '<json>' [--id ID] | cli watch <workflow id> | cli report <workflow id> | cli ${ARTIFACT_USAGE} | cli ${DATASET_USAGE} | ${REGISTRY_USAGE} | ${GC_USAGE}`);
      console.error(SCHEDULE_USAGE.replace(/^/gm, 'cli '));
      process.exitCode = 2;
      return;
    }
    const result = await followRun(client, workflowId);
    console.log(JSON.stringify(result, null, 2));
    const markdown = compressionTableOf(result);
    if (markdown) console.log(`\n${markdown}`);
  } finally {
    await connection.close();
  }
}

main().catch((err) => {
  endLine();
  // A failed run's own message is generic ("Activity task failed"); what to fix is at the end of the cause chain.
  const messages: string[] = [];
  for (let current: unknown = err; current instanceof Error; current = current.cause) messages.push(current.message);
  console.error(messages.length ? messages.join(': ') : err);
  process.exit(err instanceof ScheduleArgumentError || err instanceof OptionError ? 2 : 1);
});
