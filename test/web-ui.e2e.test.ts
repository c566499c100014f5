import { Client, Connection } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'puppeteer-core';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../lib/encryption/codec';
import { dataConverterFromEnvironment } from '../lib/encryption/data-converter';
import { keysFromEnvironment } from '../lib/encryption/key-file';
import { startDevServer, waitForPort } from '../scripts/dev-server';
import { startCodecServer } from '../workers/codec-server';
import { progressQuery } from '../workflows';
import { chromiumUnavailable, launchChromium, screenshotsIn } from './helpers/browser';
import { freePort, startWorkerProcess, temporaryDataDir, type WorkerProcess } from './helpers/temporal';
import { waitFor } from './helpers/wait';

const SCREENSHOTS = join(__dirname, '..', '..', 'test-output', 'webui');
const MODEL_QUERY = 'MlModel = "mnist-digits"';
/** What the form starts the run with: a field that shows nowhere else, so finding it on the run page means the UI decoded the input. */
const INPUT = '{"registry":{"minImprovement":0.001}}';
/** The statuses the run page shows for a closed run. */
const CLOSED = ['Completed', 'Failed', 'Canceled', 'Terminated', 'Timed Out', 'Continued as New'];

/** The editable area of the code editor a label names (the UI's JSON fields are editors, not inputs). */
function editorLabelled(label: string): string {
  return `::-p-xpath(//label[normalize-space()="${label}"]/following::*[@role="textbox"][1])`;
}

/** Workflow IDs in the list's rows, read from each row's "Select Workflow <id>" checkbox. */
function listedWorkflowIds(page: Page): Promise<string[]> {
  return page.$$eval('main input[type="checkbox"][aria-label^="Select Workflow "]', (boxes) =>
    boxes.map((box) => box.getAttribute('aria-label')!.slice('Select Workflow '.length)).sort(),
  );
}

const QUERY_TYPE_BUTTON = '//label[normalize-space()="Query Type"]/following::button[1]';

/**
 * Picks a query in the Queries tab's Query Type menu, and waits for the menu to close: while it fades out it still
 * covers Run Query, and a click there would pick another query. The menu fills in as the worker answers the run's
 * metadata query and may re-render under the pointer meanwhile, so the choice is made again until the field shows it.
 */
async function chooseQueryType(page: Page, name: string): Promise<void> {
  const menu = `::-p-xpath(//*[@id=${QUERY_TYPE_BUTTON}/@aria-controls])`;
  await waitFor(`Query Type to read ${name}`, 60_000, async () => {
    await page.locator(`::-p-xpath(${QUERY_TYPE_BUTTON})`).click();
    await page.locator(`::-p-aria([name="${name}"][role="option"])`).click();
    await page.waitForSelector(menu, { hidden: true });
    return (await page.$(`::-p-aria([name="${name}"][role="button"])`)) ? true : undefined;
  });
}

/** The JSON objects the page's read-only editors show (the run's input and result, a query's answer), in page order. */
async function shownJson(page: Page): Promise<unknown[]> {
  const texts = await page.$$eval('main [role="textbox"]', (boxes) => boxes.map((box) => box.textContent?.trim() ?? ''));
  return texts.filter((text) => text.startsWith('{')).map((text) => JSON.parse(text));
}

describe('the Web UI path, payloads encrypted: start mlPipeline from the form, find it by MlModel, read its decoded input and progress query through the codec server (real dev server, worker and Chromium)', { skip: chromiumUnavailable }, () => {
  let server: ChildProcess;
  let codecServer: Server;
  let worker: WorkerProcess;
  let connection: Connection;
  /** Decrypts, as the project's clients do with the key file set. */
  let client: Client;
  /** Sees what the server stores. */
  let rawClient: Client;
  let browser: Browser;
  let ui: string;

  before(async () => {
    const dataDir = temporaryDataDir();
    const keyFile = join(dataDir, 'keys.json');
    writeFileSync(keyFile, JSON.stringify([{ id: 'web-ui-key', key: randomBytes(32).toString('base64') }]));
    const keys = { TEMPORAL_ML_ENCRYPTION_KEY_FILE: keyFile };
    const [port, uiPort] = [await freePort(), await freePort()];
    ui = `http://127.0.0.1:${uiPort}`;
    codecServer = await startCodecServer(new AesGcmCodec(keysFromEnvironment(keys)!), { host: '127.0.0.1', port: 0, allowedOrigins: [ui] });
    const codecEndpoint = `http://127.0.0.1:${(codecServer.address() as AddressInfo).port}`;
    server = startDevServer({ ip: '127.0.0.1', port, uiPort, dbFilename: join(dataDir, 'temporal.db'), codecEndpoint }, 'ignore');
    await Promise.all([waitForPort('127.0.0.1', port, 60_000), waitForPort('127.0.0.1', uiPort, 60_000)]);
    const address = `127.0.0.1:${port}`;
    [worker, connection, browser] = await Promise.all([startWorkerProcess(address, dataDir, keys), Connection.connect({ address }), launchChromium()]);
    client = new Client({ connection, dataConverter: dataConverterFromEnvironment(keys) });
    rawClient = new Client({ connection });
  });

  after(async () => {
    await browser?.close();
    await connection?.close();
    codecServer?.close();
    const exitCode = await worker?.stop();
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    assert.equal(exitCode, 0, `worker should shut down cleanly on SIGTERM:\n${worker?.output()}`);
  });

  it('runs the form’s input to completion and shows it decoded, under MlModel, with its progress answer', async (t) => {
    const screenshot = screenshotsIn(SCREENSHOTS);
    t.diagnostic(`screenshots in ${SCREENSHOTS}`);
    const workflowId = 'my-first-run';
    const page = await browser.newPage();
    page.setDefaultTimeout(60_000);
    let passed = false;
    t.after(async () => {
      if (!passed) t.diagnostic(`the page when the test failed: ${await screenshot(page, 'failed')}`);
    });

    // The UI's home (the default namespace's Workflows page), Start Workflow, the form filled in as the README says.
    await page.goto(ui);
    await page.locator('::-p-aria([name="Start Workflow"])').click();
    await page.locator('::-p-aria([name="Workflow ID"][role="textbox"])').fill(workflowId);
    await page.locator('::-p-aria([name="Task Queue"][role="textbox"])').fill('ml-pipeline');
    await page.locator('::-p-aria([name="Workflow Type"][role="textbox"])').fill('mlPipeline');
    await page.locator(editorLabelled('Data')).click();
    await page.keyboard.type(INPUT);
    assert.equal(await page.$eval(editorLabelled('Data'), (editor) => editor.textContent), INPUT);
    // Leaving the editor reformats its JSON and moves the button below it: leave it before clicking there.
    await page.locator('::-p-aria([name="Workflow Type"][role="textbox"])').click();
    await page.locator('::-p-text(Task Queue is Active)').wait();
    await screenshot(page, 'start-workflow-form');
    await page.locator('::-p-aria([name="Start Workflow"][role="button"])').click();

    // The confirmation links to the run; the run page updates itself until the run closes.
    await page.locator('::-p-aria([name="Workflow started successfully"][role="link"])').click();
    const closed = CLOSED.map((status) => `normalize-space()="${status}"`).join(' or ');
    const status = await page.locator(`::-p-xpath(//main//span[${closed}])`).setTimeout(300_000).map((badge) => badge.textContent?.trim()).wait();
    assert.equal(status, 'Completed');
    await page.locator('::-p-aria([name="Result"][role="heading"])').wait();
    // The input as typed, decoded by the codec server: the server holds only ciphertext (the form's input went
    // through the codec server's /encode too).
    await waitFor('the decoded input on the run page', 30_000, async () => ((await shownJson(page)).some((json) => isDeepStrictEqual(json, JSON.parse(INPUT))) ? true : undefined));
    await screenshot(page, 'run-completed');
    const handle = client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    assert.deepEqual([description.type, description.taskQueue, description.status.name], ['mlPipeline', 'ml-pipeline', 'COMPLETED']);
    const { events } = await rawClient.workflow.getHandle(workflowId).fetchHistory();
    const stored = events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads!;
    assert.deepEqual(Object.fromEntries(Object.entries(stored[0]!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString()])), { encoding: ENCRYPTED_ENCODING, [KEY_ID_METADATA]: 'web-ui-key' });
    assert.ok(!Buffer.from(stored[0]!.data!).toString('latin1').includes('minImprovement'));
    assert.deepEqual(await decodeFromPayloadsAtIndex(client.options.loadedDataConverter, 0, stored), JSON.parse(INPUT));

    // The workflow list, filtered with the query editor by the MlModel search attribute. The editor's </> button
    // has no accessible name, only the UI's own test id.
    await page.locator('::-p-aria(Back to Workflows)').click();
    await page.locator('[data-testid="toggle-manual-query"]').click();
    await page.locator('::-p-aria([name="Enter a query"][role="searchbox"])').fill(MODEL_QUERY);
    await page.locator('::-p-aria([name="Search"][role="button"])').click();
    const expected: string[] = [];
    for await (const run of client.workflow.list({ query: MODEL_QUERY })) expected.push(run.workflowId);
    expected.sort();
    assert.ok(expected.includes(workflowId), `the server finds ${workflowId} by ${MODEL_QUERY}: ${expected.join(', ')}`);
    await waitFor(`the list to show ${expected.join(', ')}`, 30_000, async () => {
      const listed = await listedWorkflowIds(page);
      return listed.join() === expected.join() ? listed : undefined;
    });
    await screenshot(page, 'list-filtered-by-model');

    // The run's Queries tab: progress, Run Query, and the answer the workflow gives.
    await page.locator(`::-p-aria([name="${workflowId}"][role="link"])`).click();
    await page.locator('::-p-aria([name="Queries"][role="tab"])').click();
    await chooseQueryType(page, 'progress');
    await page.locator('::-p-aria([name="Run Query"][role="button"])').click();
    const shown = await waitFor('the progress answer', 60_000, async () => (await shownJson(page)).find((json) => (json as { stage?: unknown }).stage !== undefined));
    await screenshot(page, 'progress-query');
    assert.equal((shown as { stage: string }).stage, 'done');
    assert.deepEqual(shown, await handle.query(progressQuery));
    passed = true;
  });
});
