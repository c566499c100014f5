import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { refId: string; expr: string; datasource: { type: string; uid: string } }[];
}

/** The panels of docker/grafana/dashboards/temporal-ml.json, rows included. */
export function dashboardPanels(): DashboardPanel[] {
  const file = join(__dirname, '..', '..', '..', 'docker', 'grafana', 'dashboards', 'temporal-ml.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { panels: DashboardPanel[] }).panels;
}
