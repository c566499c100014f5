import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ReportLocation } from '../../activities/report';
import type { ReportDocument } from '../../lib/reports/document';

/** The `report.json` beside a run's report page: its sections, each with its figures and tables. */
export function reportDocumentOf(location: ReportLocation): ReportDocument {
  return JSON.parse(readFileSync(join(dirname(location.reportHtmlPath), 'report.json'), 'utf8')) as ReportDocument;
}
