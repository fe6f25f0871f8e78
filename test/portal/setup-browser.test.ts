/**
 * The first-run set-up in real headless Chromium, as a new household meets it: the one-time link
 * `citizen start` prints, a name typed the way a phone or a hurried person types it, the admin
 * account made, and on into the portal — with no error in the console on the way (the browser's
 * own /favicon.ico request included).
 *
 * Skipped when /usr/bin/chromium is missing (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startDaemon, type Daemon } from '../../apps/daemon/daemon.ts';
import { DataDir } from '../../apps/daemon/data-dir.ts';

const CHROMIUM = '/usr/bin/chromium';

describe('first-run set-up page in headless Chromium', function () {
  this.timeout(60_000);
  let dir: string;
  let daemon: Daemon;
  let browser: Browser;

  before(async function () {
    if (!existsSync(CHROMIUM)) this.skip();
    dir = mkdtempSync(join(tmpdir(), 'citizen-setup-browser-'));
    new DataDir(dir).init('rose');
    daemon = await startDaemon({ dataDir: dir, portal: { host: '127.0.0.1', port: 0 } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates the admin from the one-time link (a capitalised name too) and opens the portal, with a clean console', async () => {
    assert.ok(daemon.setupLink, 'a fresh node prints a set-up link');
    const page = await (await browser.newContext()).newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
    });

    await page.goto(daemon.setupLink);
    await page.locator('#user').fill('Dana');
    await page.locator('#password').fill('dana password');
    await page.locator('#repeat').fill('dana password');
    await page.getByRole('button', { name: 'Create admin account' }).click();
    const open = page.getByRole('link', { name: 'Open the portal' });
    await open.waitFor();
    assert.match((await page.locator('#result').textContent()) ?? '', /you are dana@rose/);
    // The favicon request is made by the browser on its own, in the background: give it time.
    await page.waitForTimeout(500);
    assert.deepEqual(problems, []);

    await open.click();
    await page.getByRole('navigation', { name: 'Apps' }).waitFor();
    assert.equal(await page.locator('header .who').textContent(), 'dana@rose');
    assert.deepEqual(problems, []);

    // The link is spent: it says so, and leads to the login.
    const spent = await page.goto(daemon.setupLink);
    assert.equal(spent?.status(), 409);
    await page.getByRole('link', { name: 'Log in' }).click();
    await page.getByRole('navigation', { name: 'Apps' }).waitFor();
  });
});
