import type { TestWorkflowEnvironment } from '@temporalio/testing';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { localArtifactStore } from './helpers/local-store';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { ReportLocation } from '../activities/report';
import type { ReportDocument } from '../lib/reports/document';
import { reportDocumentOf } from './helpers/report';
import { mlPipeline, trainModel } from '../workflows';
import { runWorkersInProcess, startTemporal, temporaryDataDir, type InProcessWorkers } from './helpers/temporal';

const TINY_MODEL = { architecture: 'mlp' as const, hiddenUnits: [16] };

/** The report's page, its `report.json`, and checks that every PNG the page embeds is there, a PNG of the size the page states. */
async function readReport(location: ReportLocation): Promise<{ html: string; document: ReportDocument; images: string[] }> {
  assert.equal(location.reportHtmlPath, localArtifactStore().pathOf(location.reportHtmlUri));
  const folder = dirname(location.reportHtmlPath);
  const html = readFileSync(location.reportHtmlPath, 'utf8');
  const document = reportDocumentOf(location);
  const images = [...html.matchAll(/<img src="([^"]+)" width="(\d+)" height="(\d+)"/g)];
  assert.ok(images.length > 0, 'the page embeds charts');
  for (const [, file, width, height] of images) {
    const metadata = await sharp(join(folder, file!)).metadata();
    assert.deepEqual([metadata.format, metadata.width, metadata.height], ['png', Number(width), Number(height)], file);
  }
  return { html, document, images: images.map((m) => m[1]!) };
}

describe('reports of runs (real Temporal server, real workers)', () => {
  let env: TestWorkflowEnvironment;
  let workers: InProcessWorkers;

  before(async () => {
    process.env.TEMPORAL_ML_DATA_DIR = temporaryDataDir();
    env = await startTemporal();
    workers = await runWorkersInProcess(env, ['ml-pipeline', 'ml-cpu', 'ml-train']);
  });

  after(async () => {
    await workers.shutdown();
    await env.teardown();
  });

  /** Runs `npm run cli -- report <workflowId>` (not spawnSync: this process runs the workers, which must keep answering). */
  async function cliReport(workflowId: string): Promise<string> {
    const child = spawn(process.execPath, [join(__dirname, '..', 'cli', 'main.js'), 'report', workflowId], { env: { ...process.env, TEMPORAL_ADDRESS: env.address } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const status = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(status, 0, stderr);
    return stdout;
  }

  let manifestUri: string;
  const pipelineId = `report-pipeline-${Date.now()}`;

  it('mlPipeline: one report with its own summary and its training and compression children\'s charts; the CLI prints where they are', async () => {
    const result = await env.client.workflow.execute(mlPipeline, {
      taskQueue: 'ml-pipeline',
      workflowId: pipelineId,
      args: [{ dataset: { maxImages: 300 }, batching: { size: 300 }, model: TINY_MODEL, training: { epochs: 2 }, compression: { variants: [{ method: 'quantize', dtype: 'float16' }] } }],
    });
    assert.ok(result.status === 'trained');
    manifestUri = result.manifestUri;
    const { html, document, images } = await readReport(result);
    assert.deepEqual(document.sections.map((section) => section.heading), ['Summary', 'Training', 'Evaluation on the test split', 'Compression']);
    assert.deepEqual(images.sort(), ['compression-compression.png', 'training-accuracy.png', 'training-confusion-matrix.png', 'training-f1-per-class.png', 'training-loss.png']);
    assert.ok(html.includes(`${(result.testAccuracy * 100).toFixed(2)}% on ${result.counts.test} images`));
    assert.ok(html.includes('<td>float16</td>') && html.includes('<td>baseline</td>'), 'the compression table');

    const printed = await cliReport(pipelineId);
    assert.match(printed, new RegExp(`Report of mlPipeline ${pipelineId}:`));
    assert.ok(printed.includes(result.reportHtmlPath), printed);
    const chartPaths = printed.split('\n').flatMap((line) => /^ {2}(\/\S+\.png) {2}/.exec(line)?.[1] ?? []);
    assert.deepEqual(chartPaths.map((path) => path.slice(dirname(result.reportHtmlPath).length + 1)).sort(), images.sort());
    assert.ok(chartPaths.every(existsSync));
    assert.match(printed, /training-loss\.png +Training: Loss per epoch/);
  });

  it('trainModel: loss and accuracy per epoch, confusion matrix and per-class F1 with the class names; the CLI prints where they are', async () => {
    const workflowId = `report-train-${Date.now()}`;
    const result = await env.client.workflow.execute(trainModel, {
      taskQueue: 'ml-pipeline',
      workflowId,
      args: [{ manifestUri, model: TINY_MODEL, training: { epochs: 2, earlyStopping: null } }],
    });
    const { html, document, images } = await readReport(result);
    assert.deepEqual(images, ['loss.png', 'accuracy.png', 'confusion-matrix.png', 'f1-per-class.png']);
    assert.deepEqual(document.sections.map((section) => section.heading), ['Training', 'Evaluation on the test split']);
    assert.ok(html.includes(`<title>trainModel ${workflowId}: model</title>`));
    for (const digit of ['0', '1', '9']) assert.ok(html.includes(`<tr><td>${digit}</td>`), `class ${digit} in the per-class table`);

    const printed = await cliReport(workflowId);
    assert.ok(printed.includes(result.reportHtmlPath));
    for (const image of images) assert.ok(printed.includes(join(dirname(result.reportHtmlPath), image)), image);
  });
});
