import { artifactStore } from '../lib/artifacts';
import type { CompressionTable } from '../lib/compression/choice';
import type { RoundRecord } from '../lib/distributed/rounds';
import type { EvaluationReport } from '../lib/evaluation/evaluate-job';
import { prefixedSections, storedSection, type ReportDocument, type ReportSection, type StoredSection } from '../lib/reports/document';
import { reportHtml } from '../lib/reports/html';
import { renderPng } from '../lib/reports/png';
import { compressionSection, evaluationSection, roundsSection, sweepSection, trainingSection, type TrialRow } from '../lib/reports/sections';
import type { SweepMetric } from '../lib/schemas/hyperparameter-sweep';
import type { EpochRecord } from '../lib/training/checkpoint';

/** What a report shows: each field that is set adds its section, in this order. Large data comes by URI. */
export interface WriteReportInput {
  title: string;
  /** A summary section of label and value pairs. */
  facts?: [string, string][];
  training?: { history: EpochRecord[]; bestEpoch: number };
  roundHistoryUri?: string;
  evaluationReportUri?: string;
  sweep?: { trialTableUri: string; metric: SweepMetric };
  compressionTableUri?: string;
  /** Reports of child runs whose sections and PNGs this one includes, their files renamed `<prefix>-<file>`. */
  includes?: { prefix: string; reportHtmlUri: string }[];
}

export interface ReportLocation {
  /** `index.html` of the report's folder, a content-addressed directory artifact that also holds the PNGs and `report.json`. */
  reportHtmlUri: string;
  /** Where a person opens it: a path on the worker's file system, or the object store's s3:// URL of the folder's page. */
  reportHtmlPath: string;
}

/** Writes an HTML report with PNG charts of a run's stored results as one directory artifact; returns where its page is. */
export async function writeReport(input: WriteReportInput): Promise<ReportLocation> {
  const store = artifactStore();
  const sections: ReportSection[] = [];
  if (input.facts?.length) sections.push({ heading: 'Summary', facts: input.facts, figures: [], tables: [] });
  if (input.training) sections.push(trainingSection(input.training.history, input.training.bestEpoch));
  if (input.roundHistoryUri) sections.push(roundsSection(await store.readJson<RoundRecord[]>(input.roundHistoryUri)));
  if (input.evaluationReportUri) sections.push(evaluationSection(await store.readJson<EvaluationReport>(input.evaluationReportUri)));
  if (input.sweep) sections.push(sweepSection(await store.readJson<TrialRow[]>(input.sweep.trialTableUri), input.sweep.metric));
  if (input.compressionTableUri) sections.push(compressionSection(await store.readJson<CompressionTable>(input.compressionTableUri)));

  const figures = sections.flatMap((section) => section.figures);
  const files: Record<string, Uint8Array> = Object.fromEntries(await Promise.all(figures.map(async (figure) => [figure.file, await renderPng(figure.chart)] as const)));
  const stored: StoredSection[] = sections.map(storedSection);
  for (const { prefix, reportHtmlUri } of input.includes ?? []) {
    const included = await store.readDirectory(reportHtmlUri.slice(0, reportHtmlUri.lastIndexOf('/')));
    const document = JSON.parse(included['report.json']!.toString('utf8')) as ReportDocument;
    for (const section of document.sections) for (const figure of section.figures) files[`${prefix}-${figure.file}`] = included[figure.file]!;
    stored.push(...prefixedSections(document.sections, prefix));
  }
  const document: ReportDocument = { title: input.title, sections: stored };
  files['report.json'] = Buffer.from(JSON.stringify(document, null, 2));
  files['index.html'] = Buffer.from(reportHtml(document));
  const folder = await store.putDirectory(files);
  const reportHtmlUri = `${folder.uri}/index.html`;
  return { reportHtmlUri, reportHtmlPath: store.locationOf(reportHtmlUri) };
}
