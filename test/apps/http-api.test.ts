/**
 * The HTTP API of SPEC §4 (login/logout/me, mail, status, /metrics, first-run set-up) and its
 * LAN defences (Host allowlist, origin checks, rate limit, cookies, headers), through fastify
 * `inject` over small fakes of the node's services, plus one pass over a real socket.
 * Random bodies (fast-check; the seed is printed and FC_SEED=<seed> replays) never get a 500.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { ManualClock } from '../../mesh/clock.ts';
import { AppError } from '../../apps/errors.ts';
import { createAccounts, type Accounts } from '../../apps/daemon/accounts.ts';
import { createHttpApi, type HttpApiOptions } from '../../apps/daemon/http-api.ts';
import type { MailInput, MailView, NodeServices, StatusView } from '../../apps/daemon/services.ts';
import { createSessions, type Sessions } from '../../apps/daemon/sessions.ts';

const seed = Number(process.env.FC_SEED ?? 20260326);
const PASSWORD = 'correct horse';
const SETUP_TOKEN = 'one-time-setup-token-0123456789abcdef';

const INBOX: MailView[] = [
  { id: 'm2', from: 'bob@rose', to: ['alice@rose'], subject: 'later', body: 'b', date: '2026-01-02T00:00:00.000Z', read: false },
  { id: 'm1', from: 'carol@lily', to: ['alice@rose'], subject: 'earlier', body: 'a', date: '2026-01-01T00:00:00.000Z', read: true },
];
const STATUS: StatusView = { household: 'rose', node_id: 'ab'.repeat(32), fingerprint: 'fp', links: [], records: 3, households_known: 1, p2p: null };

interface Harness {
  app: ReturnType<typeof createHttpApi>;
  accounts: Accounts;
  sessions: Sessions;
  clock: ManualClock;
  sent: Array<{ user: string; input: MailInput }>;
  created: string[];
  token: { value: string; consumed: boolean };
  dir: string;
}

const running: Harness[] = [];

/** An API over fakes, with alice (admin) and bob already registered unless `empty`. */
async function harness(options: Partial<HttpApiOptions> & { empty?: boolean; setupToken?: boolean } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'citizen-http-'));
  const accounts = createAccounts(join(dir, 'accounts.json'), { scryptCost: { N: 2 ** 10 } });
  if (!options.empty) {
    await accounts.add('alice', PASSWORD, { admin: true });
    await accounts.add('bob', 'battery staple');
  }
  const clock = new ManualClock();
  const sessions = createSessions({ clock, idleTtlMs: 3_600_000, absoluteTtlMs: 86_400_000 });
  const sent: Harness['sent'] = [];
  const created: string[] = [];
  const token = { value: SETUP_TOKEN, consumed: !options.setupToken };
  const services: NodeServices = {
    household: 'rose',
    mail: {
      async send(user, input) {
        const bad = input.to.find((a) => !a.includes('@'));
        if (bad !== undefined) throw new AppError('bad_address', `"${bad}" is not a mail address; write member@household`);
        if (input.subject === 'explode') throw new Error('disk on fire at /secret/path');
        sent.push({ user, input });
        return { id: `mail-${sent.length}` };
      },
      async list(_user, folder) {
        return folder === 'inbox' ? INBOX : [];
      },
    },
    status: async () => STATUS,
    metrics: async () => '# HELP citizen_records_stored Records in the store.\n# TYPE citizen_records_stored gauge\ncitizen_records_stored 3\n',
  };
  const app = createHttpApi(
    { allowedHosts: ['rose.local', 'Citizen.Example.'], portalPort: 8080, ...options },
    {
      services,
      accounts,
      sessions,
      clock,
      get setupToken() {
        return token.consumed ? null : { value: token.value, consume: () => void (token.consumed = true) };
      },
      onAccountCreated: (name) => void created.push(name),
    },
  );
  await app.ready();
  const h = { app, accounts, sessions, clock, sent, created, token, dir };
  running.push(h);
  return h;
}

/** `name=value` of the session cookie a response sets. */
function cookieOf(response: LightMyRequestResponse): string {
  const header = response.headers['set-cookie'];
  const line = Array.isArray(header) ? header[0] : header;
  assert.ok(line, 'a Set-Cookie header');
  return line.split(';')[0]!;
}

function assertError(response: LightMyRequestResponse, status: number, code?: string): { error: string; message: string } {
  assert.equal(response.statusCode, status, response.body);
  assert.match(String(response.headers['content-type']), /^application\/json/);
  const body = response.json() as { error: string; message: string };
  assert.deepEqual(Object.keys(body).sort(), ['error', 'message']);
  assert.equal(typeof body.error, 'string');
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
  assert.doesNotMatch(response.body, /\n\s+at |\.ts:\d+/, 'no stack trace');
  if (code) assert.equal(body.error, code);
  return body;
}

function login(h: Harness, user = 'alice', password = PASSWORD, headers: Record<string, string> = {}, remoteAddress?: string) {
  return h.app.inject({ method: 'POST', url: '/api/login', payload: { user, password }, headers, ...(remoteAddress ? { remoteAddress } : {}) });
}

async function loggedIn(h: Harness, user = 'alice', password = PASSWORD): Promise<string> {
  const response = await login(h, user, password);
  assert.equal(response.statusCode, 200, response.body);
  return cookieOf(response);
}

describe('HTTP API', () => {
  afterEach(async () => {
    for (const h of running.splice(0)) {
      await h.app.close();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  describe('login, me, logout', () => {
    it('logs in with the right pair: 200, the SPEC shape and an HttpOnly, SameSite=Strict cookie', async () => {
      const h = await harness();
      const response = await login(h);
      assert.equal(response.statusCode, 200);
      assert.match(String(response.headers['content-type']), /^application\/json/);
      assert.deepEqual(response.json(), { user: 'alice', address: 'alice@rose', household: 'rose', admin: true });
      const cookie = String(response.headers['set-cookie']);
      assert.match(cookie, /^citizen_session=[A-Za-z0-9_-]{43};/);
      assert.match(cookie, /; HttpOnly/);
      assert.match(cookie, /; SameSite=Strict/);
      assert.match(cookie, /; Path=\//);
      assert.match(cookie, /; Max-Age=86400/);
      assert.doesNotMatch(cookie, /Secure/);
      const me = await h.app.inject({ url: '/api/me', headers: { cookie: cookieOf(response) } });
      assert.equal(me.statusCode, 200);
      assert.deepEqual(me.json(), { user: 'alice', address: 'alice@rose', household: 'rose', admin: true });
      const bob = await login(h, 'bob', 'battery staple');
      assert.deepEqual(bob.json(), { user: 'bob', address: 'bob@rose', household: 'rose', admin: false });
    });

    it('takes the user name in any case and with spaces around it (phones capitalise)', async () => {
      const h = await harness();
      assert.equal((await login(h, ' Alice ')).json().user, 'alice');
    });

    it('answers 401 bad_credentials alike for a wrong password and an unknown user, setting no cookie', async () => {
      const h = await harness();
      const wrong = await login(h, 'alice', 'wrong password');
      const unknown = await login(h, 'mallory', PASSWORD);
      assert.deepEqual(assertError(wrong, 401, 'bad_credentials'), assertError(unknown, 401, 'bad_credentials'));
      assert.equal(wrong.headers['set-cookie'], undefined);
      assertError(await login(h, 'alice', ''), 400, 'bad_request');
      assertError(await h.app.inject({ method: 'POST', url: '/api/login', payload: { user: 'alice' } }), 400, 'bad_request');
    });

    it('rate-limits login per client: 10 wrong passwords get 401, the 11th gets 429 with Retry-After', async () => {
      const h = await harness();
      for (let i = 0; i < 10; i++) assertError(await login(h, 'alice', `wrong ${i}`), 401, 'bad_credentials');
      const limited = await login(h, 'alice', 'wrong again');
      assertError(limited, 429, 'too_many_requests');
      assert.ok(Number(limited.headers['retry-after']) > 0);
      assertError(await login(h), 429, 'too_many_requests');
      // Another device on the LAN is not locked out by this one.
      assert.equal((await login(h, 'alice', PASSWORD, {}, '192.168.1.23')).statusCode, 200);
    });

    it('honours a configured rate limit', async () => {
      const h = await harness({ loginRateLimit: { max: 2, timeWindowMs: 60_000 } });
      assert.equal((await login(h, 'alice', 'nope nope')).statusCode, 401);
      assert.equal((await login(h, 'alice', 'nope nope')).statusCode, 401);
      assertError(await login(h, 'alice', 'nope nope'), 429, 'too_many_requests');
    });

    it('counts wrong attempts only: a member who logs in right again and again is never locked out', async () => {
      const h = await harness();
      for (let i = 0; i < 25; i++) assert.equal((await login(h, i % 2 ? 'alice' : 'bob', i % 2 ? PASSWORD : 'battery staple')).statusCode, 200);
      // Wrong ones still add up, and a right one in between does not wipe them.
      for (let i = 0; i < 9; i++) assertError(await login(h, 'alice', `wrong ${i}`), 401, 'bad_credentials');
      assert.equal((await login(h)).statusCode, 200);
      assertError(await login(h, 'alice', 'wrong 10'), 401, 'bad_credentials');
      assertError(await login(h, 'bob', 'battery staple'), 429, 'too_many_requests');
    });

    it('holds a burst of wrong guesses sent at once to the limit, as if sent one after another', async () => {
      const h = await harness({ loginRateLimit: { max: 5, timeWindowMs: 60_000 } });
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => login(h, 'alice', `guess ${i}`)));
      const statuses = answers.map((a) => a.statusCode).sort();
      assert.deepEqual(statuses, [...Array(5).fill(401), ...Array(15).fill(429)]);
    });

    it('lets the right user in again once the window has passed, though the client kept trying while locked out', async () => {
      const h = await harness({ loginRateLimit: { max: 2, timeWindowMs: 60_000 } });
      assert.equal((await login(h, 'alice', 'nope nope')).statusCode, 401);
      assert.equal((await login(h, 'alice', 'nope nope')).statusCode, 401);
      for (let i = 0; i < 3; i++) {
        const refused = await login(h, i === 2 ? 'alice' : 'mallory', i === 2 ? PASSWORD : 'guess');
        assertError(refused, 429, 'too_many_requests');
        assert.ok(Number(refused.headers['retry-after']) > 0);
        h.clock.advance(15_000);
      }
      h.clock.advance(15_001);
      assert.equal((await login(h)).statusCode, 200);
    });

    it('limits wrong current passwords on POST /api/me/password the same way', async () => {
      const h = await harness({ loginRateLimit: { max: 2, timeWindowMs: 60_000 } });
      const cookie = await loggedIn(h);
      const change = (current: string) =>
        h.app.inject({ method: 'POST', url: '/api/me/password', headers: { cookie }, payload: { current, password: 'a new password' } });
      assertError(await change('wrong one'), 401, 'bad_credentials');
      assertError(await change('wrong two'), 401, 'bad_credentials');
      assertError(await change(PASSWORD), 429, 'too_many_requests');
    });

    it('marks the cookie Secure with the __Host- prefix when secureCookies is set', async () => {
      const h = await harness({ secureCookies: true });
      const response = await login(h);
      const cookie = String(response.headers['set-cookie']);
      assert.match(cookie, /^__Host-citizen_session=/);
      assert.match(cookie, /; Secure/);
      assert.match(cookie, /; HttpOnly/);
      assert.match(String(response.headers['strict-transport-security']), /max-age=/);
      assert.equal((await h.app.inject({ url: '/api/me', headers: { cookie: cookieOf(response) } })).statusCode, 200);
    });

    it('GET /api/me needs a live session: 401 without one, with a made-up one, and after logout', async () => {
      const h = await harness();
      assertError(await h.app.inject({ url: '/api/me' }), 401, 'not_logged_in');
      assertError(await h.app.inject({ url: '/api/me', headers: { cookie: `citizen_session=${'A'.repeat(43)}` } }), 401);
      assertError(await h.app.inject({ url: '/api/me', headers: { cookie: 'citizen_session=%%%' } }), 401);
      const cookie = await loggedIn(h);
      const out = await h.app.inject({ method: 'POST', url: '/api/logout', headers: { cookie } });
      assert.equal(out.statusCode, 204);
      assert.equal(out.body, '');
      const cleared = String(out.headers['set-cookie']);
      assert.match(cleared, /^citizen_session=;/);
      assert.match(cleared, /Max-Age=0/);
      assertError(await h.app.inject({ url: '/api/me', headers: { cookie } }), 401, 'not_logged_in');
      assert.equal(h.sessions.size, 0);
    });

    it('logout answers 204 without a session too, with or without an (empty) JSON body', async () => {
      const h = await harness();
      assert.equal((await h.app.inject({ method: 'POST', url: '/api/logout' })).statusCode, 204);
      const empty = await h.app.inject({ method: 'POST', url: '/api/logout', headers: { 'content-type': 'application/json' } });
      assert.equal(empty.statusCode, 204);
      assert.equal((await h.app.inject({ method: 'POST', url: '/api/logout', payload: {} })).statusCode, 204);
    });

    it('rotates the session id at every login and ends the session it replaces', async () => {
      const h = await harness();
      const first = await loggedIn(h);
      const again = await login(h, 'alice', PASSWORD, { cookie: first });
      const second = cookieOf(again);
      assert.notEqual(second, first);
      assertError(await h.app.inject({ url: '/api/me', headers: { cookie: first } }), 401);
      assert.equal((await h.app.inject({ url: '/api/me', headers: { cookie: second } })).statusCode, 200);
      // A planted (fixated) id never becomes a live session.
      const planted = `citizen_session=${'x'.repeat(43)}`;
      const fresh = cookieOf(await login(h, 'bob', 'battery staple', { cookie: planted }));
      assert.notEqual(fresh, planted);
    });

    it('ends a session after the idle time, on the injected clock', async () => {
      const h = await harness();
      const cookie = await loggedIn(h);
      h.clock.advance(3_599_000);
      assert.equal((await h.app.inject({ url: '/api/me', headers: { cookie } })).statusCode, 200);
      h.clock.advance(3_600_000);
      assertError(await h.app.inject({ url: '/api/me', headers: { cookie } }), 401);
    });
  });

  describe('mail', () => {
    it('lists a folder newest first, inbox by default, for the logged-in member only', async () => {
      const h = await harness();
      assertError(await h.app.inject({ url: '/api/mail?folder=inbox' }), 401, 'not_logged_in');
      const cookie = await loggedIn(h);
      const inbox = await h.app.inject({ url: '/api/mail?folder=inbox', headers: { cookie } });
      assert.equal(inbox.statusCode, 200);
      assert.deepEqual(inbox.json(), INBOX);
      assert.deepEqual((await h.app.inject({ url: '/api/mail', headers: { cookie } })).json(), INBOX);
      assert.deepEqual((await h.app.inject({ url: '/api/mail?folder=sent', headers: { cookie } })).json(), []);
      assertError(await h.app.inject({ url: '/api/mail?folder=spam', headers: { cookie } }), 400, 'bad_request');
      assertError(await h.app.inject({ url: '/api/mail?folder=inbox&folder=sent', headers: { cookie } }), 400, 'bad_request');
    });

    it('sends a mail: 201 {id}, from the session\'s member', async () => {
      const h = await harness();
      const cookie = await loggedIn(h, 'bob', 'battery staple');
      const mail = { to: ['alice@rose', 'dave@example.org'], subject: 'Hello', body: 'Soup at six?' };
      const response = await h.app.inject({ method: 'POST', url: '/api/mail', payload: mail, headers: { cookie } });
      assert.equal(response.statusCode, 201);
      assert.deepEqual(response.json(), { id: 'mail-1' });
      assert.deepEqual(h.sent, [{ user: 'bob', input: mail }]);
      assertError(await h.app.inject({ method: 'POST', url: '/api/mail', payload: mail }), 401, 'not_logged_in');
    });

    it('refuses malformed mail with 400 and the error shape, before the mail service sees it', async () => {
      const h = await harness();
      const cookie = await loggedIn(h);
      const good = { to: ['bob@rose'], subject: 's', body: 'b' };
      const bad: unknown[] = [
        { ...good, to: [] },
        { ...good, to: 'bob@rose' },
        { ...good, to: [42] },
        { ...good, to: [''] },
        { ...good, to: ['x'.repeat(321)] },
        { ...good, to: Array.from({ length: 65 }, (_, i) => `m${i}@rose`) },
        { ...good, subject: 7 },
        { ...good, subject: 's'.repeat(999) },
        { ...good, body: null },
        { ...good, body: 'b'.repeat(100_001) },
        { to: ['bob@rose'], subject: 's' },
        [good],
        'a string',
        null,
      ];
      for (const payload of bad) {
        const response = await h.app.inject({
          method: 'POST',
          url: '/api/mail',
          headers: { cookie, 'content-type': 'application/json' },
          payload: JSON.stringify(payload),
        });
        assertError(response, 400, 'bad_request');
      }
      assertError(await h.app.inject({ method: 'POST', url: '/api/mail', headers: { cookie, 'content-type': 'application/json' }, payload: '{"to":' }), 400);
      const xml = assertError(await h.app.inject({ method: 'POST', url: '/api/mail', headers: { cookie, 'content-type': 'text/xml' }, payload: '<mail/>' }), 415, 'unsupported_media_type');
      assert.match(xml.message, /Content-Type: application\/json/, 'a sentence saying what to send, not "Unsupported Media Type"');
      assert.deepEqual(h.sent, []);
    });

    it('passes on the mail service\'s AppError (status and code) and hides an unexpected error behind a 500', async () => {
      const h = await harness();
      const cookie = await loggedIn(h);
      const refused = await h.app.inject({ method: 'POST', url: '/api/mail', payload: { to: ['bob'], subject: 's', body: 'b' }, headers: { cookie } });
      assert.match(assertError(refused, 400, 'bad_address').message, /not a mail address/);
      const broken = await h.app.inject({ method: 'POST', url: '/api/mail', payload: { to: ['bob@rose'], subject: 'explode', body: 'b' }, headers: { cookie } });
      const body = assertError(broken, 500, 'internal_error');
      assert.doesNotMatch(body.message, /disk|secret/);
    });

    it('refuses a body over the limit with 413', async () => {
      const h = await harness({ bodyLimit: 1024 });
      const cookie = await loggedIn(h);
      const response = await h.app.inject({ method: 'POST', url: '/api/mail', payload: { to: ['bob@rose'], subject: 's', body: 'b'.repeat(2000) }, headers: { cookie } });
      assertError(response, 413, 'payload_too_large');
    });
  });

  describe('status and metrics', () => {
    it('serves /api/status to a logged-in member, or to a client on this machine, and 401 to others', async () => {
      const h = await harness();
      const local = await h.app.inject({ url: '/api/status' });
      assert.equal(local.statusCode, 200);
      assert.deepEqual(local.json(), STATUS);
      assertError(await h.app.inject({ url: '/api/status', remoteAddress: '192.168.1.23' }), 401, 'not_logged_in');
      const cookie = await loggedIn(h);
      assert.deepEqual((await h.app.inject({ url: '/api/status', remoteAddress: '192.168.1.23', headers: { cookie } })).json(), STATUS);
    });

    it('serves /metrics in the Prometheus text format without a session', async () => {
      const h = await harness();
      const response = await h.app.inject({ url: '/metrics', remoteAddress: '192.168.1.40' });
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
      assert.match(response.body, /^citizen_records_stored 3$/m);
    });

    it('with metricsAccess "local", serves /metrics to this machine only', async () => {
      const h = await harness({ metricsAccess: 'local' });
      assert.equal((await h.app.inject({ url: '/metrics' })).statusCode, 200);
      assertError(await h.app.inject({ url: '/metrics', remoteAddress: '192.168.1.40' }), 403, 'forbidden');
    });
  });

  describe('first-run set-up', () => {
    it('serves the set-up page for the right token: HTML, a CSP, no inline script', async () => {
      const h = await harness({ empty: true, setupToken: true });
      const page = await h.app.inject({ url: `/setup?token=${SETUP_TOKEN}` });
      assert.equal(page.statusCode, 200);
      assert.match(String(page.headers['content-type']), /^text\/html/);
      assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
      assert.doesNotMatch(String(page.headers['content-security-policy']), /unsafe-inline/);
      assert.match(page.body, /<form id="setup"/);
      assert.match(page.body, /<script src="\/setup.js"><\/script>/);
      assert.doesNotMatch(page.body, /<script>|<script [^>]*>[^<]/, 'no inline script');
      assert.doesNotMatch(page.body, /<style|style=/, 'no inline style');
      assert.ok(!page.body.includes(SETUP_TOKEN), 'the token is not echoed');
      const script = await h.app.inject({ url: '/setup.js' });
      assert.equal(script.statusCode, 200);
      assert.match(String(script.headers['content-type']), /^text\/javascript/);
      assert.match(script.body, /\/api\/setup/);
      assert.match(String((await h.app.inject({ url: '/setup.css' })).headers['content-type']), /^text\/css/);
      for (const url of ['/setup', '/setup?token=wrong', `/setup?token=${SETUP_TOKEN}&token=x`]) {
        const refused = await h.app.inject({ url });
        assert.equal(refused.statusCode, 403, url);
        assert.match(String(refused.headers['content-type']), /^text\/html/);
      }
    });

    it('creates the first admin once: 201, logged in, token consumed; then 403', async () => {
      const h = await harness({ empty: true, setupToken: true });
      const setup = (token: string, user = 'alice', password = PASSWORD) =>
        h.app.inject({ method: 'POST', url: '/api/setup', payload: { token, user, password } });
      assertError(await setup('wrong-token'), 403, 'bad_setup_token');
      assertError(await setup(SETUP_TOKEN, 'Not Valid'), 400, 'account_name_invalid');
      assertError(await setup(SETUP_TOKEN, 'alice', 'short'), 400, 'password_too_short');
      assert.equal(h.token.consumed, false, 'bad input does not use the token up');
      const created = await setup(SETUP_TOKEN);
      assert.equal(created.statusCode, 201);
      assert.deepEqual(created.json(), { user: 'alice', address: 'alice@rose', household: 'rose', admin: true });
      assert.equal(h.token.consumed, true);
      assert.deepEqual(h.created, ['alice']);
      assert.equal((await h.accounts.get('alice'))?.admin, true);
      const me = await h.app.inject({ url: '/api/me', headers: { cookie: cookieOf(created) } });
      assert.equal(me.json().admin, true);
      assertError(await setup(SETUP_TOKEN, 'mallory'), 403, 'bad_setup_token');
      assert.equal(await h.accounts.get('mallory'), null);
      assert.equal((await h.app.inject({ url: `/setup?token=${SETUP_TOKEN}` })).statusCode, 409);
    });

    it('answers 409 and retires the token when an admin appeared meanwhile (citizen user add --admin)', async () => {
      const h = await harness({ empty: true, setupToken: true });
      await h.accounts.add('carol', 'carol password', { admin: true });
      const response = await h.app.inject({ method: 'POST', url: '/api/setup', payload: { token: SETUP_TOKEN, user: 'alice', password: PASSWORD } });
      assertError(response, 409, 'already_set_up');
      assert.equal(h.token.consumed, true);
      assert.equal(await h.accounts.get('alice'), null);
    });

    it('creates one admin only when two set-up requests race', async () => {
      const h = await harness({ empty: true, setupToken: true });
      const [a, b] = await Promise.all(
        ['alice', 'bob'].map((user) => h.app.inject({ method: 'POST', url: '/api/setup', payload: { token: SETUP_TOKEN, user, password: PASSWORD } })),
      );
      assert.deepEqual([a!.statusCode, b!.statusCode].sort(), [201, 409]);
      assert.equal((await h.accounts.list()).length, 1);
    });
  });

  describe('LAN defences', () => {
    it('answers 421 misdirected_request to a Host that is not the portal\'s own', async () => {
      const h = await harness();
      for (const host of ['evil.example', 'evil.example:8080', 'rose.local.evil.example', 'localhost.evil.example', '127.0.0.1.nip.io', 'a b', '::1', '[::1', 'rose.local:port']) {
        assertError(await h.app.inject({ url: '/api/me', headers: { host } }), 421, 'misdirected_request');
        assertError(await login(h, 'alice', PASSWORD, { host }), 421, 'misdirected_request');
      }
      assertError(await h.app.inject({ url: '/metrics', headers: { host: 'evil.example' } }), 421);
      assertError(await h.app.inject({ url: '/no/such/route', headers: { host: 'evil.example' } }), 421);
      for (const host of ['rose.local', 'rose.local:8080', 'ROSE.LOCAL:8080', 'citizen.example', 'localhost', 'localhost:9999', '127.0.0.1:8080', '192.168.1.5', '[::1]:8080', '[fe80::1]']) {
        assert.equal((await h.app.inject({ url: '/metrics', headers: { host } })).statusCode, 200, host);
      }
    });

    it('refuses a state-changing request from a foreign Origin with 403 forbidden_origin, and lets the portal\'s own through', async () => {
      const h = await harness();
      for (const origin of ['http://evil.example', 'http://evil.example:8080', 'http://rose.local:3000', 'http://rose.local', 'null', 'garbage', 'file://', 'http://192.168.1.99:8080']) {
        assertError(await login(h, 'alice', PASSWORD, { host: 'rose.local:8080', origin }), 403, 'forbidden_origin');
      }
      const cookie = await loggedIn(h);
      const mail = { to: ['bob@rose'], subject: 's', body: 'b' };
      assertError(
        await h.app.inject({ method: 'POST', url: '/api/mail', payload: mail, headers: { cookie, origin: 'http://evil.example' } }),
        403,
        'forbidden_origin',
      );
      assertError(await h.app.inject({ method: 'POST', url: '/api/logout', headers: { cookie, origin: 'http://evil.example' } }), 403);
      assert.equal((await h.app.inject({ url: '/api/me', headers: { cookie } })).statusCode, 200, 'the refused logout did nothing');
      assert.deepEqual(h.sent, []);
      // Same origin, as a browser on the portal sends it.
      for (const [host, origin] of [
        ['rose.local:8080', 'http://rose.local:8080'],
        ['localhost:80', 'http://localhost'],
        ['192.168.1.5:8080', 'http://192.168.1.5:8080'],
        ['[::1]:8080', 'http://[::1]:8080'],
      ] as const) {
        assert.equal((await login(h, 'alice', PASSWORD, { host, origin, 'sec-fetch-site': 'same-origin' })).statusCode, 200, origin);
      }
      const sent = await h.app.inject({ method: 'POST', url: '/api/mail', payload: mail, headers: { cookie, host: 'localhost:80', origin: 'http://localhost' } });
      assert.equal(sent.statusCode, 201);
      // Reading is not state-changing: the same-origin policy guards it.
      assert.equal((await h.app.inject({ url: '/api/me', headers: { cookie, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' } })).statusCode, 200);
    });

    it('refuses state-changing requests marked Sec-Fetch-Site: cross-site (or same-site) with 403', async () => {
      const h = await harness();
      assertError(await login(h, 'alice', PASSWORD, { 'sec-fetch-site': 'cross-site' }), 403, 'forbidden_origin');
      assertError(await login(h, 'alice', PASSWORD, { 'sec-fetch-site': 'same-site' }), 403, 'forbidden_origin');
      assertError(await h.app.inject({ method: 'POST', url: '/api/setup', headers: { 'sec-fetch-site': 'cross-site' }, payload: {} }), 403);
      assert.equal((await login(h, 'alice', PASSWORD, { 'sec-fetch-site': 'same-origin' })).statusCode, 200);
      assert.equal((await login(h, 'alice', PASSWORD, { 'sec-fetch-site': 'none' })).statusCode, 200);
    });

    it('sends the security headers on answers, errors and 404s', async () => {
      const h = await harness();
      const responses = [
        await login(h),
        await login(h, 'alice', 'wrong password'),
        await h.app.inject({ url: '/no/such/route' }),
        await h.app.inject({ url: '/api/me', headers: { host: 'evil.example' } }),
        await h.app.inject({ url: '/metrics' }),
      ];
      for (const r of responses) {
        assert.equal(r.headers['x-content-type-options'], 'nosniff');
        assert.equal(r.headers['referrer-policy'], 'no-referrer');
        assert.equal(r.headers['x-frame-options'], 'DENY');
        assert.match(String(r.headers['content-security-policy']), /default-src 'self'.*frame-ancestors 'none'/);
        assert.equal(r.headers['cache-control'], 'no-store');
      }
      assertError(responses[2]!, 404, 'not_found');
    });

    it('answers what fastify refuses before routing in the error shape: bad percent-encoding 400 bad_url, an overlong id 404, a foreign Host 421 first', async () => {
      const h = await harness();
      const cookie = await loggedIn(h);
      const badUrl = await h.app.inject({ url: '/api/files/%zz', headers: { cookie } });
      assertError(badUrl, 400, 'bad_url');
      assert.equal(badUrl.headers['x-content-type-options'], 'nosniff');
      assertError(await h.app.inject({ url: `/api/files/${'a'.repeat(150)}`, headers: { cookie } }), 404, 'not_found');
      assertError(await h.app.inject({ url: `/api/chat/rooms/${'a'.repeat(150)}/messages`, headers: { cookie } }), 404, 'not_found');
      assertError(await h.app.inject({ url: '/%zz', headers: { host: 'evil.example' } }), 421, 'misdirected_request');
    });

    it('answers a known address asked with the wrong method 405 method_not_allowed with Allow (RFC 9110), an unknown one 404', async () => {
      const h = await harness();
      const cookie = await loggedIn(h);
      for (const [method, url, allow] of [
        ['DELETE', '/api/me', 'GET, HEAD'],
        ['PUT', '/api/mail?folder=inbox', 'GET, HEAD, POST'],
        ['GET', '/api/login', 'POST'],
        ['DELETE', '/api/chat/rooms/00112233445566ff/messages', 'GET, HEAD, POST'],
        ['PATCH', '/metrics', 'GET, HEAD'],
      ] as const) {
        const response = await h.app.inject({ method, url, headers: { cookie } });
        assertError(response, 405, 'method_not_allowed');
        assert.equal(response.headers.allow, allow, `${method} ${url}`);
      }
      assertError(await h.app.inject({ method: 'DELETE', url: '/api/nothing-here', headers: { cookie } }), 404, 'not_found');
      assertError(await h.app.inject({ method: 'GET', url: '/api/me/nothing', headers: { cookie } }), 404, 'not_found');
      // The Host check comes first, as for every request.
      assertError(await h.app.inject({ method: 'DELETE', url: '/api/me', headers: { host: 'evil.example' } }), 421, 'misdirected_request');
    });
  });

  describe('secrets', () => {
    it('never puts a password hash or salt in any answer', async () => {
      const h = await harness();
      const file = JSON.parse(readFileSync(join(h.dir, 'accounts.json'), 'utf8')) as { accounts: Array<{ password: { hash: string; salt: string } }> };
      const secrets = file.accounts.flatMap((a) => [a.password.hash, a.password.salt]);
      const cookie = await loggedIn(h);
      const bodies = [
        (await login(h)).body,
        (await h.app.inject({ url: '/api/me', headers: { cookie } })).body,
        (await h.app.inject({ url: '/api/status', headers: { cookie } })).body,
        (await h.app.inject({ url: '/metrics' })).body,
        (await h.app.inject({ url: '/api/mail', headers: { cookie } })).body,
        (await login(h, 'alice', 'wrong password')).body,
        (await h.app.inject({ method: 'POST', url: '/api/setup', payload: { token: 'x', user: 'alice', password: PASSWORD } })).body,
      ];
      for (const body of bodies) {
        for (const secret of secrets) assert.ok(!body.includes(secret), `a secret in ${body}`);
        assert.doesNotMatch(body, /scrypt|"salt"|"hash"|"password"/);
      }
    });

    it('logs no password, session id or set-up token when logging is on', async () => {
      const lines: string[] = [];
      const h = await harness({ empty: true, setupToken: true, logger: { level: 'info', stream: { write: (line) => void lines.push(line) } } });
      const created = await h.app.inject({ method: 'POST', url: '/api/setup', payload: { token: SETUP_TOKEN, user: 'alice', password: PASSWORD } });
      assert.equal(created.statusCode, 201);
      await h.app.inject({ url: `/setup?token=${SETUP_TOKEN}` });
      const session = cookieOf(await login(h));
      await h.app.inject({ url: '/api/me', headers: { cookie: session } });
      await login(h, 'alice', 'a wrong password');
      await h.app.inject({ method: 'POST', url: '/api/mail', headers: { cookie: session }, payload: { to: ['bob@rose'], subject: 'explode', body: 'b' } });
      const log = lines.join('');
      assert.ok(lines.length >= 6, 'requests are logged');
      for (const secret of [PASSWORD, 'a wrong password', SETUP_TOKEN, session.split('=')[1]!]) assert.ok(!log.includes(secret), `"${secret}" logged`);
      assert.match(log, /disk on fire/, 'an unexpected error is logged (for the operator), though not answered');
    });
  });

  describe('random bodies (fast-check)', () => {
    before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

    const anyJson = fc.jsonValue({ maxDepth: 3 });
    const payloads = (shaped: fc.Arbitrary<unknown>) =>
      fc.oneof(
        anyJson.map((v) => JSON.stringify(v)),
        shaped.map((v) => JSON.stringify(v)),
        fc.string({ maxLength: 60 }),
        fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b).toString('latin1')),
      );

    it('POST /api/login answers every random body with a 4xx error shape (or 200), never a 500', async () => {
      const h = await harness({ loginRateLimit: { max: 1_000_000, timeWindowMs: 60_000 } });
      const shaped = fc.record({ user: fc.oneof(fc.constant('alice'), anyJson), password: fc.oneof(fc.constant(PASSWORD), anyJson) }, { requiredKeys: [] });
      await fc.assert(
        fc.asyncProperty(payloads(shaped), async (payload) => {
          const r = await h.app.inject({ method: 'POST', url: '/api/login', headers: { 'content-type': 'application/json' }, payload });
          if (r.statusCode === 200) return assert.equal(r.json().user, 'alice');
          assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${r.statusCode} for ${payload}`);
          assertError(r, r.statusCode);
        }),
        { seed, numRuns: 300 },
      );
    });

    it('POST /api/mail answers every random body with a 4xx error shape (or 201 {id}), never a 500', async () => {
      const h = await harness();
      const cookie = await loggedIn(h);
      const shaped = fc.record(
        {
          to: fc.oneof(fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.constant('bob@rose')), { maxLength: 4 }), anyJson),
          subject: fc.oneof(fc.string({ maxLength: 20 }), anyJson),
          body: fc.oneof(fc.string({ maxLength: 40 }), anyJson),
        },
        { requiredKeys: [] },
      );
      await fc.assert(
        fc.asyncProperty(payloads(shaped), async (payload) => {
          const r = await h.app.inject({ method: 'POST', url: '/api/mail', headers: { cookie, 'content-type': 'application/json' }, payload });
          if (r.statusCode === 201) return assert.equal(typeof r.json().id, 'string');
          assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${r.statusCode} for ${payload}`);
          assertError(r, r.statusCode);
        }),
        { seed, numRuns: 300 },
      );
    });
  });

  describe('over a real socket', () => {
    /** node:http, because fetch will not send a made-up Host or Origin header. */
    function raw(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
      return new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    }

    /** Bytes written straight to the socket, and everything the node answers until it closes. */
    function rawBytes(port: number, request: string): Promise<string> {
      return new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write(request));
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk) => (text += chunk));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
    }

    it('answers what Node\'s HTTP parser refuses (oversized headers, garbage) in the error shape, then closes', async () => {
      const h = await harness();
      await h.app.listen({ host: '127.0.0.1', port: 0 });
      const address = h.app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      for (const [request, status, code] of [
        [`GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
        ['GARBAGE\r\n\r\n', 400, 'bad_request'],
        ['GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n', 400, 'bad_request'],
      ] as const) {
        const answer = await rawBytes(port, request);
        const [head, body] = answer.split('\r\n\r\n') as [string, string];
        assert.match(head, new RegExp(`^HTTP/1\\.1 ${status} `));
        assert.match(head, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
        assert.match(head, /\r\nx-content-type-options: nosniff\r\n/i);
        assert.equal(Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]), Buffer.byteLength(body));
        const parsed = JSON.parse(body) as Record<string, unknown>;
        assert.deepEqual(Object.keys(parsed).sort(), ['error', 'message']);
        assert.equal(parsed.error, code);
      }
    });

    it('checks the host of an absolute-form target (RFC 9112: it stands instead of Host), refuses two Host lines or none, and an unknown Expect, in the error shape', async () => {
      const h = await harness();
      await h.app.listen({ host: '127.0.0.1', port: 0 });
      const address = h.app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const statusOf = async (request: string) => {
        const answer = await rawBytes(port, request);
        const body = JSON.parse(answer.split('\r\n\r\n')[1]!) as { error: string };
        return [Number(answer.split(' ')[1]), body.error];
      };
      assert.deepEqual(await statusOf('GET http://evil.example/api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'), [421, 'misdirected_request']);
      assert.deepEqual(await statusOf(`GET http://127.0.0.1:${port}/api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`), [401, 'not_logged_in']);
      assert.deepEqual(await statusOf('GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n'), [400, 'bad_host']);
      // HTTP/1.1 without Host: 400 in the error shape (Node's own answer had an empty body); HTTP/1.0 has no Host to check.
      assert.deepEqual(await statusOf('GET /api/me HTTP/1.1\r\nConnection: close\r\n\r\n'), [400, 'bad_host']);
      assert.deepEqual(await statusOf('GET /api/me HTTP/1.0\r\n\r\n'), [421, 'misdirected_request']);
      // An Expect Node does not know: 417 in the error shape (Node's own answer had an empty body).
      assert.deepEqual(await statusOf('GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: foo\r\nConnection: close\r\n\r\n'), [417, 'expectation_failed']);
      assert.deepEqual(await statusOf('GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'), [401, 'not_logged_in']);
      // `OPTIONS *` names the server, not the page at "/": no "this address takes GET, HEAD".
      assert.deepEqual(await statusOf('OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'), [404, 'not_found']);
    });

    it('answers a request that arrives while the node stops 503 unavailable in the error shape', async () => {
      const h = await harness();
      await h.app.listen({ host: '127.0.0.1', port: 0 });
      const address = h.app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      // A login whose body is still on its way keeps the connection busy while the node stops;
      // a second request pipelined behind it arrives during the stop.
      const login = JSON.stringify({ user: 'alice', password: PASSWORD });
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk) => (text += chunk));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      await new Promise<void>((resolve) => socket.write(`POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${login.length}\r\n\r\n${login.slice(0, 5)}`, () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const stopping = h.app.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.write(`${login.slice(5)}GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 3000))]);
      socket.destroy();
      await stopping;
      const answers = text.split(/(?=HTTP\/1\.1 )/);
      assert.equal(answers.length, 2, text);
      assert.match(answers[0]!, /^HTTP\/1\.1 200 /);
      assert.match(answers[1]!, /^HTTP\/1\.1 503 /);
      assert.deepEqual(JSON.parse(answers[1]!.split('\r\n\r\n')[1]!), { error: 'unavailable', message: 'the node is stopping; try again when it is back' });
    });

    it('logs in, reads /api/me and logs out with fetch; 421 for a foreign Host, 403 for a foreign Origin', async () => {
      const h = await harness();
      await h.app.listen({ host: '127.0.0.1', port: 0 });
      const address = h.app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const base = `http://127.0.0.1:${port}`;
      const json = { 'content-type': 'application/json' };
      const response = await fetch(`${base}/api/login`, { method: 'POST', headers: json, body: JSON.stringify({ user: 'alice', password: PASSWORD }) });
      assert.equal(response.status, 200);
      const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0]!;
      const me = await fetch(`${base}/api/me`, { headers: { cookie } });
      assert.deepEqual(await me.json(), { user: 'alice', address: 'alice@rose', household: 'rose', admin: true });
      const wrong = await fetch(`${base}/api/login`, { method: 'POST', headers: json, body: JSON.stringify({ user: 'alice', password: 'wrong password' }) });
      assert.equal(wrong.status, 401);

      const foreign = await raw(port, 'GET', '/api/me', { host: 'evil.example', cookie });
      assert.equal(foreign.status, 421);
      assert.equal(JSON.parse(foreign.body).error, 'misdirected_request');
      const forged = await raw(port, 'POST', '/api/logout', { host: `127.0.0.1:${port}`, origin: 'http://evil.example', cookie });
      assert.equal(forged.status, 403);
      assert.equal(JSON.parse(forged.body).error, 'forbidden_origin');
      const own = await raw(port, 'POST', '/api/logout', { host: `127.0.0.1:${port}`, origin: base, cookie });
      assert.equal(own.status, 204);
      assert.equal((await fetch(`${base}/api/me`, { headers: { cookie } })).status, 401);
    });
  });
});
