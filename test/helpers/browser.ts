import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** Debian's `chromium` (scripts/provision-test-tools.sh installs it), or the browser `CHROMIUM` names. */
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export const chromiumUnavailable =
  spawnSync(chromium, ['--version']).status === 0 ? undefined : `${chromium} is not installed (scripts/provision-test-tools.sh installs chromium)`;

/**
 * Headless Chromium with the flags a container needs: no sandbox (Chromium refuses to start as root with one) and
 * shared memory in /tmp (a container's /dev/shm is often 64 MB, too small for a page).
 */
export function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    defaultViewport: { width: 1280, height: 960 },
  });
}

/** Saves numbered screenshots of the page into `folder`, emptied first, so it holds only this run's steps. */
export function screenshotsIn(folder: string): (page: Page, step: string) => Promise<string> {
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  let count = 0;
  return async (page, step) => {
    const path = join(folder, `${String(++count).padStart(2, '0')}-${step}.png`);
    await page.screenshot({ path });
    return path;
  };
}
