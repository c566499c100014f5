import type { Chart } from './svg';

/** A chart of a report and the PNG file it is stored as, by its name in the report's folder. */
export interface ReportFigure {
  file: string;
  title: string;
  chart: Chart;
}

export interface ReportTable {
  columns: string[];
  rows: string[][];
}

/** One part of a report: a few figures as label and value, charts and tables. */
export interface ReportSection {
  heading: string;
  facts: [string, string][];
  figures: ReportFigure[];
  tables: ReportTable[];
}

/** A figure as `report.json` keeps it: its file, not its SVG. */
export interface FigureRef {
  file: string;
  title: string;
  width: number;
  height: number;
}

export interface StoredSection extends Omit<ReportSection, 'figures'> {
  figures: FigureRef[];
}

/** What a report's folder holds beside `index.html` and the PNGs, so another report can include its sections. */
export interface ReportDocument {
  title: string;
  sections: StoredSection[];
}

export function storedSection(section: ReportSection): StoredSection {
  return { ...section, figures: section.figures.map(({ file, title, chart }) => ({ file, title, width: chart.width, height: chart.height })) };
}

/** The same sections with every figure's file renamed `<prefix>-<file>`, so several reports' files share one folder. */
export function prefixedSections(sections: StoredSection[], prefix: string): StoredSection[] {
  return sections.map((section) => ({ ...section, figures: section.figures.map((figure) => ({ ...figure, file: `${prefix}-${figure.file}` })) }));
}
