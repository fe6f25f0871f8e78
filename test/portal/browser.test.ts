/**
 * The portal in real headless Chromium (Debian `chromium`, driven by playwright-core) on a
 * phone-sized viewport (390×844): log in through the page, send mail, chat, upload and
 * download a file, publish a post, and look at the mesh and account pages. Every request must
 * stay on the portal's origin and the console must stay free of errors. Screenshots of each
 * page go to $CITIZEN_SCREENSHOTS (default: a temporary directory), never into git.
 *
 * Skipped when /usr/bin/chromium is missing (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createAccounts } from '../../apps/daemon/accounts.ts';
import { startDaemon, type Daemon } from '../../apps/daemon/daemon.ts';
import { DataDir } from '../../apps/daemon/data-dir.ts';
import { Mailbox } from '../../apps/mail/mailbox.ts';
import { announceGateway, NO_PEER_KEY } from '../../gateway/announce.ts';
import { GatewayService } from '../../mesh/directory.ts';
import { login } from '../helpers/citizen.ts';

const CHROMIUM = '/usr/bin/chromium';

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe('portal in headless Chromium (390×844)', function () {
  this.timeout(60_000);
  let dir: string;
  let daemon: Daemon;
  let neighbour: Daemon | undefined;
  let browser: Browser;
  let page: Page;
  const foreign: string[] = [];
  const problems: string[] = [];
  let bytesLoaded = 0;
  const shots = process.env.CITIZEN_SCREENSHOTS ?? join(tmpdir(), 'citizen-portal-screenshots');

  before(async function () {
    if (!existsSync(CHROMIUM)) this.skip();
    dir = mkdtempSync(join(tmpdir(), 'citizen-browser-'));
    const data = new DataDir(join(dir, 'rose'));
    data.init('rose');
    const accounts = createAccounts(data.accountsPath, { scryptCost: { N: 2 ** 10 } });
    await accounts.add('alice', 'alice password', { admin: true });
    await accounts.add('bob', 'bob password');
    // A neighbour (oak) on a UDP link, so the mesh page has someone to draw.
    const [ours, theirs] = [await freeUdpPort(), await freeUdpPort()];
    const oakDir = join(dir, 'oak');
    new DataDir(oakDir).init('oak');
    daemon = await startDaemon({ dataDir: join(dir, 'rose'), portal: { host: '127.0.0.1', port: 0 }, links: [`udp://127.0.0.1:${ours}?peer=127.0.0.1:${theirs}`] });
    neighbour = await startDaemon({ dataDir: oakDir, portal: { host: '127.0.0.1', port: 0 }, links: [`udp://127.0.0.1:${theirs}?peer=127.0.0.1:${ours}`] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, acceptDownloads: true });
    page = await context.newPage();
    page.on('request', (request) => {
      if (!request.url().startsWith(`${daemon.url}/`) && !request.url().startsWith('data:')) foreign.push(request.url());
    });
    page.on('response', async (response) => {
      const length = Number(response.headers()['content-length'] ?? NaN);
      bytesLoaded += Number.isFinite(length) ? length : (await response.body().catch(() => Buffer.alloc(0))).length;
    });
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    mkdirSync(shots, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    await neighbour?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    assert.deepEqual(foreign, [], 'requests left the portal\'s origin');
    assert.deepEqual(problems, [], 'errors in the console');
  });

  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  it('shows the login page first and logs in through it; the page is light', async () => {
    const started = Date.now();
    await page.goto(`${daemon.url}/`);
    await page.getByLabel('Name').waitFor();
    const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
    console.log(`      first contentful paint ${paint === null ? '?' : Math.round(paint)} ms, login page ready in ${Date.now() - started} ms, ${(bytesLoaded / 1024).toFixed(1)} KB loaded`);
    assert.ok(bytesLoaded < 100 * 1024, `the login page weighs ${bytesLoaded} bytes`);
    await shot('login');
    // By keyboard alone: the name field has the focus, Tab moves on, Enter logs in.
    assert.equal(await page.evaluate('document.activeElement.id'), 'login-user');
    await page.keyboard.type('Alice');
    await page.keyboard.press('Tab');
    await page.keyboard.type('alice password');
    await page.keyboard.press('Enter');
    await page.getByRole('navigation', { name: 'Apps' }).waitFor();
    assert.equal(await page.locator('header .who').textContent(), 'alice@rose');
    // The session cookie is out of the page's reach.
    assert.equal(await page.evaluate('document.cookie'), '');
    const [cookie] = await page.context().cookies();
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, 'Strict');
  });

  it('sends mail from the compose form; it reaches the recipient and shows in Sent', async () => {
    await page.goto(`${daemon.url}/#/mail?folder=compose`);
    await page.getByLabel('To').fill('bob@rose');
    await page.getByLabel('Subject').fill('Garden tools');
    await page.getByLabel('Message').fill('Can I borrow the <b>rake</b>?');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText(/^Sent\./).waitFor();
    const bob = await login(daemon.url, 'bob', 'bob password');
    const inbox = (await (await bob('/api/mail?folder=inbox')).json()) as Array<{ subject: string; body: string; from: string }>;
    assert.deepEqual(inbox.map((m) => [m.from, m.subject, m.body]), [['alice@rose', 'Garden tools', 'Can I borrow the <b>rake</b>?']]);
    await page.getByRole('button', { name: 'Sent' }).click();
    await page.getByRole('button', { name: /Garden tools/ }).click();
    await page.getByText('Can I borrow the <b>rake</b>?').waitFor(); // shown as text, not markup
    // Bob is in this household: the mail is on this node, so Sent says delivered.
    assert.equal(await page.locator('#thread-title ~ article .badge').first().textContent(), 'delivered');
    await shot('mail');
  });

  it('pages a long inbox: 50 mails, then "Older mail" shows the rest', async () => {
    const bob = await login(daemon.url, 'bob', 'bob password');
    for (let i = 0; i < 55; i++) {
      const res = await bob('/api/mail', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to: ['alice@rose'], subject: `notice ${i}`, body: 'x' }) });
      assert.equal(res.status, 201);
    }
    await page.goto(`${daemon.url}/#/mail?folder=inbox`);
    const items = page.getByRole('list', { name: 'Inbox' }).getByRole('listitem');
    await page.getByRole('button', { name: 'Older mail' }).waitFor();
    assert.equal(await items.count(), 50);
    await page.getByRole('button', { name: 'Older mail' }).click();
    await page.getByRole('button', { name: 'Older mail' }).waitFor({ state: 'detached' });
    assert.equal(await items.count(), 55);
  });

  it('sends to several addresses separated the way people type them (semicolons, spaces, commas)', async () => {
    await page.goto(`${daemon.url}/#/mail?folder=compose`);
    await page.getByLabel('To').fill('bob@rose; alice@rose');
    await page.getByLabel('Subject').fill('Both of us');
    await page.getByLabel('Message').fill('one mail, two readers');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText(/^Sent\./).waitFor();
    const bob = await login(daemon.url, 'bob', 'bob password');
    const inbox = (await (await bob('/api/mail?folder=inbox')).json()) as Array<{ subject: string; to: string[] }>;
    assert.deepEqual(inbox.find((m) => m.subject === 'Both of us')?.to, ['bob@rose', 'alice@rose']);
  });

  it('shows what the gateway found of an internet sender: confirmed, or a warning that it may be forged', async () => {
    // What an SMTP gateway does with internet mail: this household, announced as one, publishes it with the checks' results.
    await announceGateway(daemon.node, { peerKey: NO_PEER_KEY, services: GatewayService.Smtp, domain: 'rose.mesh.test', addrs: [] });
    daemon.node.setMaxListeners(daemon.node.getMaxListeners() + 4); // a second mailbox (its index, its receipts) listens on the node
    const gateway = new Mailbox({ node: daemon.node, memberIdentity: () => Promise.reject(new Error('not used')) });
    await gateway.deliverAsHousehold({ from: 'carol@example.org', to: ['alice@rose'], subject: 'Parcel', body: 'Your parcel is at the shop.', authentication: { spf: 'pass', dkim: 'pass', dmarc: 'pass' } });
    await gateway.deliverAsHousehold({ from: 'security@bank.example', to: ['alice@rose'], subject: 'Account locked', body: 'Reply with your password.', authentication: { spf: 'fail', dkim: 'none', dmarc: 'fail' } });
    await page.goto(`${daemon.url}/#/mail?folder=inbox`);
    await page.getByRole('button', { name: /Parcel/ }).click();
    const confirmed = page.locator('.sender-checks');
    await confirmed.waitFor();
    assert.equal(await confirmed.locator('.badge').textContent(), 'sender confirmed by its domain');
    assert.match((await confirmed.textContent()) ?? '', /SPF pass · DKIM pass · DMARC pass/);
    await page.goto(`${daemon.url}/#/mail?folder=inbox`);
    await page.getByRole('button', { name: /Account locked/ }).click();
    await page.getByText('Reply with your password.').waitFor();
    const warning = page.locator('.sender-checks .badge');
    assert.equal(await warning.textContent(), 'sender not confirmed: this may be forged');
    assert.match((await warning.getAttribute('class')) ?? '', /\bbad\b/);
    await shot('mail-internet');
  });

  it('creates a room and chats; a neighbour\'s message appears live, without a reload', async () => {
    await page.goto(`${daemon.url}/#/chat`);
    await page.getByLabel('Name').fill('Street');
    await page.getByRole('button', { name: 'Create room' }).click();
    await page.getByLabel('Message', { exact: true }).fill('Hello street!');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('.bubble', { hasText: 'Hello street!' }).waitFor();
    const room = new URLSearchParams(new URL(page.url()).hash.split('?')[1]).get('room')!;
    const bob = await login(daemon.url, 'bob', 'bob password');
    await bob(`/api/chat/rooms/${room}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Hi Alice <script>window.pwned=1</script>' }) });
    await page.locator('.bubble', { hasText: 'Hi Alice' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate('window.pwned'), undefined);
    await shot('chat');
  });

  it('uploads a file and downloads the same bytes', async () => {
    const bytes = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 13) % 256));
    await page.goto(`${daemon.url}/#/files`);
    await page.getByLabel('File', { exact: true }).setInputFiles({ name: 'notes ü.bin', mimeType: 'application/octet-stream', buffer: bytes });
    await page.getByLabel('Share with').selectOption('neighbourhood');
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByText(/^Uploaded notes ü\.bin/).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'notes ü.bin' }).click()]);
    assert.equal(download.suggestedFilename(), 'notes ü.bin');
    assert.deepEqual(readFileSync((await download.path())!), bytes);
    await shot('files');
  });

  it('publishes a post whose Markdown is rendered and whose script is not', async () => {
    await page.goto(`${daemon.url}/#/blog`);
    await page.getByLabel('Title').fill('Street party');
    await page.getByLabel('Text').fill('# Saturday\n\nBring **food**.\n\n<img src=x onerror="window.pwned=2"><script>window.pwned=3</script>');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByRole('heading', { name: 'Street party' }).waitFor();
    assert.equal(await page.locator('.post-html strong').textContent(), 'food');
    assert.equal(await page.locator('.post-html img, .post-html script').count(), 0);
    assert.equal(await page.evaluate('window.pwned'), undefined);
    await page.getByLabel('Comment').fill('Count me in');
    await page.getByRole('button', { name: 'Add comment' }).click();
    await page.getByText('Count me in').waitFor();
    await shot('blog');
  });

  it('wraps long unbroken names and words on the phone screen: a room, a post, a file, a mail subject', async () => {
    const alice = await login(daemon.url, 'alice', 'alice password');
    const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const room = ((await (await alice('/api/chat/rooms', json({ name: 'R'.repeat(64) }))).json()) as { id: string }).id;
    await alice(`/api/chat/rooms/${room}/messages`, json({ text: 'M'.repeat(300) }));
    const post = ((await (await alice('/api/blog', json({ title: 'T'.repeat(120), body: `${'B'.repeat(300)} https://example.org/${'u'.repeat(200)}` }))).json()) as { id: string }).id;
    await alice('/api/files', { method: 'POST', headers: { 'x-file-name': `${'F'.repeat(150)}.txt` }, body: 'x' });
    await alice('/api/mail', json({ to: ['alice@rose'], subject: 'S'.repeat(200), body: 'W'.repeat(300) }));
    for (const [hash, ready] of [
      [`#/chat?room=${room}`, '.bubble'],
      [`#/blog?post=${post}`, '.post-html'],
      ['#/files', `text=${'F'.repeat(20)}`],
      ['#/mail?folder=inbox', `text=${'S'.repeat(20)}`],
    ] as const) {
      await page.goto(`${daemon.url}/${hash}`);
      await page.locator(ready).first().waitFor();
      if (hash.startsWith('#/mail')) {
        await page.getByRole('button', { name: new RegExp('S'.repeat(20)) }).first().click();
        await page.locator('#thread-title').waitFor();
      }
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
      assert.ok(overflow <= 0, `${hash}: the page is ${overflow} px wider than the screen`);
    }
  });

  it('says on the mesh page what stops the node that the household can fix: a full disk, a clock that disagrees with the neighbours', async () => {
    // The node's own status with the two problems added (each is made real in its own test:
    // test/apps/full-disk.test.ts, test/mesh/sync.test.ts); here, how the page tells them.
    await page.route(`${daemon.url}/api/status`, async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as Record<string, unknown>;
      await route.fulfill({ response, json: { ...body, disk: 'full', clock_disagreement: { households: 2, offset_s: 6 * 3600 + 300 } } });
    });
    try {
      await page.goto(`${daemon.url}/#/mesh`);
      const alerts = page.getByRole('alert');
      await alerts.first().waitFor();
      const texts = await alerts.allTextContents();
      assert.equal(texts.length, 2, texts.join(' | '));
      assert.equal(texts[0], "This node's disk is full: new mail, chat, files and records are refused (nothing is lost) until space is freed.");
      assert.match(texts[1]!, /^2 neighbouring households' clocks are about 6 h 5 min ahead of this node's, so their news is refused\. If this node's clock is wrong, set it \(theirs reads \d{4}-\d\d-\d\d \d\d:\d\d UTC\)\.$/);
    } finally {
      await page.unroute(`${daemon.url}/api/status`);
      await page.goto(`${daemon.url}/#/mail`); // leave the page, so the next visit loads the status afresh
    }
  });

  it('shows the mesh (with its neighbour) as a picture and the account page; nothing overflows the phone screen', async () => {
    await page.goto(`${daemon.url}/#/mesh`);
    await page.locator('svg.mesh').waitFor();
    await page.getByText('Records stored').waitFor();
    assert.equal(await page.getByRole('alert').count(), 0, 'a disk with room and clocks that agree: no warning');
    // The page refreshes itself every 5 s; oak appears once its beacon has been heard.
    await page.locator('svg.mesh text', { hasText: 'oak' }).waitFor({ timeout: 20_000 });
    await page.getByRole('rowheader', { name: 'Frames out / in' }).waitFor();
    await shot('mesh');
    await page.goto(`${daemon.url}/#/account`);
    await page.getByRole('heading', { name: 'Household members' }).waitFor();
    await shot('account');
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
    await page.getByRole('button', { name: 'Log out everywhere' }).click();
    await page.getByRole('button', { name: 'Log in' }).waitFor();
  });
});
