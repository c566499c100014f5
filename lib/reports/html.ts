import type { ReportDocument, ReportTable, StoredSection } from './document';
import { escapeXml as escape } from './svg';

const STYLE = `
body { font-family: "DejaVu Sans", Verdana, sans-serif; color: #222; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.25em 1.5em; }
dt { color: #666; }
dd { margin: 0; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f6f8; }
`;

/** A standalone HTML page of the report: figures as label and value, the PNGs by their names in the same folder, and tables. */
export function reportHtml(document: ReportDocument): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${escape(document.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    `<h1>${escape(document.title)}</h1>`,
    ...document.sections.map(sectionHtml),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function sectionHtml(section: StoredSection): string {
  const facts = section.facts.filter(([, value]) => value !== '');
  return [
    '<section>',
    `<h2>${escape(section.heading)}</h2>`,
    facts.length ? `<dl>${facts.map(([label, value]) => `<dt>${escape(label)}</dt><dd>${escape(value)}</dd>`).join('')}</dl>` : '',
    ...section.figures.map(
      (figure) =>
        // No caption: every chart carries its title.
        `<figure><img src="${escape(figure.file)}" width="${figure.width}" height="${figure.height}" alt="${escape(figure.title)}"></figure>`,
    ),
    ...section.tables.map(tableHtml),
    '</section>',
  ]
    .filter(Boolean)
    .join('\n');
}

function tableHtml(table: ReportTable): string {
  const head = `<tr>${table.columns.map((column) => `<th>${escape(column)}</th>`).join('')}</tr>`;
  const rows = table.rows.map((row) => `<tr>${row.map((cell) => `<td>${escape(cell)}</td>`).join('')}</tr>`);
  return `<table>\n${head}\n${rows.join('\n')}\n</table>`;
}
