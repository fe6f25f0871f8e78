/**
 * The README's path, end to end, with real processes: `citizen init`, `citizen user add`,
 * `citizen start`, then the HTTP API over a real socket on 127.0.0.1 (SPEC §2–4).
 */
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { citizen, eventually, startNode, stopNode } from '../helpers/citizen.ts';
import { freePort } from '../helpers/net.ts';

function rawGet(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return stopNode({ child, output: () => '' });
}

describe('citizen CLI and daemon (real processes)', function () {
  this.timeout(120_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'citizen-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints help for every command, and one clear error line for bad input', async () => {
    const help = await citizen(['--help']);
    assert.equal(help.code, 0);
    for (const name of ['init', 'start', 'user', 'status', 'airtime', 'sim', 'radio']) {
      assert.match(help.stdout, new RegExp(`\\b${name}\\b`));
      const one = await citizen([name, '--help']);
      assert.equal(one.code, 0, `${name} --help`);
      assert.match(one.stdout, /^Usage: citizen /);
    }
    const bad = await citizen(['init', '--data', dir, '--name', 'Not Valid!']);
    assert.notEqual(bad.code, 0);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
    const unknown = await citizen(['init', '--bogus']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /bogus/);
  });

  it('init refuses to overwrite; airtime prints the SPEC JSON', async () => {
    const first = await citizen(['init', '--name', 'rose', '--data', dir]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(statSync(join(dir, 'keys', 'household.json')).mode & 0o777, 0o600);
    const again = await citizen(['init', '--name', 'rose', '--data', dir]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /already/);
    const air = await citizen(['airtime', '--preset', 'LongFast', '--bytes', '100']);
    assert.equal(air.code, 0, air.stderr);
    const json = JSON.parse(air.stdout);
    assert.deepEqual(
      { preset: json.preset, sf: json.sf, bw_hz: json.bw_hz, cr: json.cr, bytes: json.bytes },
      { preset: 'LongFast', sf: 11, bw_hz: 250000, cr: '4/5', bytes: 100 },
    );
    // SF11/250 kHz: 8.192 ms symbols, (16 + 4.25) preamble + 8 + ceil((800 - 44 + 44) / 44) * 5 = 103 payload symbols.
    assert.ok(Math.abs(json.airtime_ms - (20.25 + 103) * 8.192) < 0.1, String(json.airtime_ms));
  });

  it('init, user add, start: login gives alice@rose; 401, 429 and 421 as SPEC §4 says', async () => {
    assert.equal((await citizen(['init', '--name', 'rose', '--data', dir])).code, 0);
    const add = await citizen(['user', 'add', 'alice', '--admin', '--password-stdin', '--data', dir], 'correct horse battery\n');
    assert.equal(add.code, 0, add.stderr);
    assert.equal(statSync(join(dir, 'accounts.json')).mode & 0o777, 0o600);
    const port = await freePort();
    const node = await startNode(['--data', dir, '--portal', `127.0.0.1:${port}`]);
    const base = `http://127.0.0.1:${port}`;
    try {
      const login = await fetch(`${base}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'alice', password: 'correct horse battery' }),
      });
      assert.equal(login.status, 200);
      const cookie = login.headers.get('set-cookie') ?? '';
      assert.match(cookie, /HttpOnly/i);
      assert.match(cookie, /SameSite=Strict/i);
      const me = await fetch(`${base}/api/me`, { headers: { cookie: cookie.split(';')[0]! } });
      assert.equal(me.status, 200);
      const body = (await me.json()) as { address: string; user: string; household: string };
      assert.equal(body.address, 'alice@rose');
      assert.equal(body.user, 'alice');
      assert.equal(body.household, 'rose');

      // Mail to another member of the household, through the API, sealed in the store.
      const addBob = await citizen(['user', 'add', 'bob', '--password-stdin', '--data', dir], 'bobs password 123\n');
      assert.equal(addBob.code, 0, addBob.stderr);
      const session = { cookie: cookie.split(';')[0]! };
      const sent = await fetch(`${base}/api/mail`, {
        method: 'POST',
        headers: { ...session, 'content-type': 'application/json' },
        body: JSON.stringify({ to: ['bob@rose'], subject: 'Tea?', body: 'At four.' }),
      });
      assert.equal(sent.status, 201);
      const { id } = (await sent.json()) as { id: string };
      const bobLogin = await fetch(`${base}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'bob', password: 'bobs password 123' }),
      });
      assert.equal(bobLogin.status, 200);
      const bobCookie = (bobLogin.headers.get('set-cookie') ?? '').split(';')[0]!;
      const inbox = (await (await fetch(`${base}/api/mail?folder=inbox`, { headers: { cookie: bobCookie } })).json()) as Array<{
        id: string;
        from: string;
        subject: string;
      }>;
      assert.deepEqual(inbox.map((m) => [m.id, m.from, m.subject]), [[id, 'alice@rose', 'Tea?']]);
      const unknown = await fetch(`${base}/api/mail`, {
        method: 'POST',
        headers: { ...session, 'content-type': 'application/json' },
        body: JSON.stringify({ to: ['zed@rose'], subject: 's', body: 'b' }),
      });
      assert.equal(unknown.status, 400);
      assert.equal(((await unknown.json()) as { error: string }).error, 'unknown_recipient');

      const status = await citizen(['status', '--data', dir]);
      assert.equal(status.code, 0, status.stderr);
      const s = JSON.parse(status.stdout);
      assert.equal(s.household, 'rose');
      assert.ok(s.records >= 2, 'household and member directory entries are stored');

      // fetch() drops a Host header, so ask with node:http as a rebinding browser would arrive.
      const foreign = await rawGet(port, '/api/me', { host: `evil.example:${port}` });
      assert.equal(foreign.status, 421);
      assert.equal(typeof (JSON.parse(foreign.body) as { error?: unknown }).error, 'string');

      const wrong = () =>
        fetch(`${base}/api/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ user: 'alice', password: 'wrong password!' }),
        });
      const first = await wrong();
      assert.equal(first.status, 401);
      const firstBody = (await first.json()) as { error?: unknown; message?: unknown };
      assert.equal(typeof firstBody.error, 'string');
      assert.equal(typeof firstBody.message, 'string');
      let limited = false;
      for (let i = 0; i < 30 && !limited; i++) limited = (await wrong()).status === 429;
      assert.ok(limited, 'repeated wrong passwords are rate limited');
    } finally {
      assert.equal(await stop(node.child), 0);
    }
    // Stopped: status reads the store.
    const offline = await citizen(['status', '--data', dir]);
    assert.equal(offline.code, 0, offline.stderr);
    assert.equal(JSON.parse(offline.stdout).running, false);
  });

  it('npm start-style first run creates the household and prints a one-time admin link', async () => {
    const port = await freePort();
    const node = await startNode(['--portal', `127.0.0.1:${port}`], { cwd: dir });
    try {
      // No flags but the port: the default data dir is ./data of the working directory.
      assert.ok(existsSync(join(dir, 'data', 'config.json')));
      assert.ok(existsSync(join(dir, 'data', 'keys', 'household.json')));
      assert.match(node.output(), new RegExp(`Portal: http://127\\.0\\.0\\.1:${port}`));
      // The set-up line follows the portal line, possibly in a later chunk of output.
      await eventually('the set-up link', async () => (/setup\?token=/.test(node.output()) ? true : undefined), 5000, 20);
      assert.match(node.output(), /setup\?token=[A-Za-z0-9_-]{20,}/);
    } finally {
      await stop(node.child);
    }
  });
});
