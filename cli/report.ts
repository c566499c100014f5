import type { Client } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReportLocation } from '../activities/report';
import { artifactStore } from '../lib/artifacts';
import type { ReportDocument } from '../lib/reports/document';

export interface RunReport {
  workflowType: string;
  htmlPath: string;
  htmlUri: string;
  charts: { path: string; title: string }[];
}

/** Where a closed run's report and its charts are, from the run's result and the `report.json` beside the page. */
export async function runReport(client: Client, workflowId: string): Promise<RunReport> {
  const handle = client.workflow.getHandle(workflowId);
  const { type, status } = await handle.describe();
  if (status.name === 'RUNNING') throw new Error(`${type} ${workflowId} is still running; its report is written when it finishes`);
  const result = (await handle.result()) as (Partial<ReportLocation> & { status?: string; champion?: { version: number; workflowId: string } }) | null;
  if (result?.status === 'unchanged' && result.champion) {
    const { version, workflowId: trainedBy } = result.champion;
    throw new Error(`${type} ${workflowId} ended as unchanged: champion version ${version} was trained on the same data with the same configuration; its report: cli report ${trainedBy}`);
  }
  if (!result?.reportHtmlUri) throw new Error(`${type} ${workflowId} has no report: mlPipeline, trainModel, hyperparameterSweep, compressModel and distributedTrain runs write one`);
  // The report's folder, as a local copy when the artifact store is remote.
  const folder = await artifactStore().localPath(result.reportHtmlUri.slice(0, result.reportHtmlUri.lastIndexOf('/')));
  const htmlPath = join(folder, 'index.html');
  const document = JSON.parse(await readFile(join(folder, 'report.json'), 'utf8')) as ReportDocument;
  const charts = document.sections.flatMap((section) => section.figures.map((figure) => ({ path: join(folder, figure.file), title: `${section.heading}: ${figure.title}` })));
  return { workflowType: type, htmlPath, htmlUri: result.reportHtmlUri, charts };
}

export function printReport(workflowId: string, report: RunReport): void {
  console.log(`Report of ${report.workflowType} ${workflowId}:\n  ${report.htmlPath}\n  ${report.htmlUri}`);
  console.log('Charts:');
  const width = Math.max(...report.charts.map((chart) => chart.path.length));
  for (const chart of report.charts) console.log(`  ${chart.path.padEnd(width)}  ${chart.title}`);
}
