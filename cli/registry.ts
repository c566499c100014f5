/**
 * `npm run cli -- registry list | show <name> | promote <name> <version> [--force --reason <why>] [--min-improvement <fraction>] | rollback <name> [--reason <why>]`
 */
import type { Client } from '@temporalio/client';
import { championOf, registryWorkflowId, type RegistryState } from '../lib/registry';
import { championQuery, promoteUpdate, registryStateQuery, rollbackUpdate, versionsQuery } from '../workflows/definitions';

export const REGISTRY_USAGE =
  'cli registry list | cli registry show <name> | cli registry promote <name> <version> [--force --reason <why>] [--min-improvement <fraction>] | cli registry rollback <name> [--reason <why>]';

const percent = (accuracy: number) => `${(accuracy * 100).toFixed(2)}%`;

function optionOf(args: string[], name: string): string | undefined {
  const index = args.indexOf(name);
  return index === -1 ? undefined : args[index + 1];
}

/** Every registry's model, version count and champion, found by a visibility query on the workflow type. */
async function list(client: Client): Promise<void> {
  const rows = ['| model | versions | champion | test accuracy | workflow ID |', '| --- | --- | --- | --- | --- |'];
  for await (const run of client.workflow.list({ query: `WorkflowType = 'modelRegistry' AND ExecutionStatus = 'Running'` })) {
    const handle = client.workflow.getHandle(run.workflowId);
    const [versions, champion] = await Promise.all([handle.query(versionsQuery), handle.query(championQuery)]);
    const modelName = run.workflowId.slice(registryWorkflowId('').length);
    rows.push(`| ${modelName} | ${versions.length} | ${champion?.version ?? '-'} | ${champion ? percent(champion.evaluation.testAccuracy) : '-'} | ${run.workflowId} |`);
  }
  console.log(rows.join('\n'));
}

/** The versions as a Markdown table (the champion marked), then the promotions and rollbacks in order. */
export function renderRegistry(state: RegistryState): string {
  const champion = championOf(state);
  const lines = [
    `${state.modelName}: ${state.versions.length} version(s), champion ${champion ? `version ${champion.version}` : 'none'}`,
    '',
    '| version | champion | test accuracy | test loss | compressed | dataset | config | run | registered | model |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...state.versions.map((v) =>
      [
        v.version,
        v.version === state.champion ? '✓' : '',
        percent(v.evaluation.testAccuracy),
        v.evaluation.testLoss.toFixed(4),
        v.compressed.map((c) => `${c.name} ${percent(c.testAccuracy)}`).join(', ') || '-',
        v.lineage.datasetFingerprint.slice(0, 12),
        v.lineage.configFingerprint,
        v.lineage.workflowId,
        v.registeredAt,
        v.modelUri,
      ].join(' | '),
    ).map((row) => `| ${row} |`),
  ];
  if (state.promotions.length) {
    lines.push('', 'Promotions:');
    for (const p of state.promotions) lines.push(`  ${p.at}  ${p.kind} to version ${p.version} (from ${p.previous ?? 'none'}): ${p.reason}`);
  }
  return lines.join('\n');
}

export async function registryCommand(client: Client, args: string[]): Promise<boolean> {
  const [subcommand, name, version] = args;
  if (subcommand === 'list') {
    await list(client);
    return true;
  }
  if (!name) return false;
  const handle = client.workflow.getHandle(registryWorkflowId(name));
  if (subcommand === 'show') {
    console.log(renderRegistry(await handle.query(registryStateQuery)));
  } else if (subcommand === 'promote' && version) {
    const minImprovement = optionOf(args, '--min-improvement');
    const decision = await handle.executeUpdate(promoteUpdate, {
      args: [{ version: Number(version), force: args.includes('--force'), reason: optionOf(args, '--reason'), minImprovement: minImprovement === undefined ? undefined : Number(minImprovement) }],
    });
    console.log(`${name}: champion is version ${decision.champion}: ${decision.reason}`);
  } else if (subcommand === 'rollback') {
    const decision = await handle.executeUpdate(rollbackUpdate, { args: [{ reason: optionOf(args, '--reason') }] });
    console.log(`${name}: champion is version ${decision.champion}: ${decision.reason}`);
  } else {
    return false;
  }
  return true;
}
