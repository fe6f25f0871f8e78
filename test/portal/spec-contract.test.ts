/**
 * SPEC §4 as an outside client meets it: a real `citizen start` process (account made with
 * `citizen user add --password-stdin`), plain fetch, and every route's status code, field names
 * and field types checked exactly — plus the error shape on what a client gets wrong.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { citizen, startNode, stopNode, type RunningNode } from '../helpers/citizen.ts';

type Kind = 'string' | 'number' | 'boolean' | 'string[]' | 'string[]|null' | 'object|null' | 'array';

/** Assert `value` has at least these fields, each of its kind (more fields are allowed: SPEC says "add freely"). */
function assertShape(value: unknown, shape: Record<string, Kind>, what: string): void {
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${what}: an object`);
  const record = value as Record<string, unknown>;
  for (const [field, kind] of Object.entries(shape)) {
    const v = record[field];
    const ok =
      kind === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string')
      : kind === 'string[]|null' ? v === null || (Array.isArray(v) && v.every((x) => typeof x === 'string'))
      : kind === 'object|null' ? v === null || (typeof v === 'object' && !Array.isArray(v))
      : kind === 'array' ? Array.isArray(v)
      : typeof v === kind;
    assert.ok(ok, `${what}.${field} is ${kind}: ${JSON.stringify(v)}`);
  }
}

const isoDate = (text: unknown) => typeof text === 'string' && !Number.isNaN(Date.parse(text)) && /^\d{4}-\d\d-\d\dT/.test(text);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('SPEC §4 over a real `citizen start` (outside client)', function () {
  this.timeout(90_000);
  let dir: string;
  let node: RunningNode;
  let base: string;
  let cookie: string;

  const call = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { ...init, headers: { cookie, ...(init.headers as Record<string, string>) } });
  const post = (path: string, body: unknown) => call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  async function json(response: Response, status: number): Promise<unknown> {
    assert.equal(response.status, status, `${response.url}: ${status} expected`);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    return response.json();
  }
  async function error(response: Response, status: number): Promise<string> {
    const body = (await json(response, status)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['error', 'message'], JSON.stringify(body));
    assert.match(String(body.error), /^[a-z][a-z0-9_]*$/, 'a machine code');
    assert.ok(String(body.message).length > 5, 'a sentence');
    return String(body.error);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'citizen-spec-'));
    const data = join(dir, 'data');
    assert.equal((await citizen(['init', '--data', data, '--name', 'rose'])).code, 0);
    assert.equal((await citizen(['user', 'add', 'alice', '--admin', '--password-stdin', '--data', data], 'alice password\n')).code, 0);
    const port = await freePort();
    node = await startNode(['--data', data, '--portal', `127.0.0.1:${port}`]);
    base = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    if (node) await stopNode(node);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('login: 401 on a wrong pair (no cookie), 200 with the member and an HttpOnly cookie on the right one; /api/me', async () => {
    cookie = '';
    const wrong = await post('/api/login', { user: 'alice', password: 'wrong password' });
    assert.equal(await error(wrong, 401), 'bad_credentials');
    assert.equal(wrong.headers.get('set-cookie'), null);
    const right = await post('/api/login', { user: 'alice', password: 'alice password' });
    assertShape(await json(right, 200), { user: 'string', address: 'string', household: 'string', admin: 'boolean' }, 'login');
    const setCookie = right.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /; HttpOnly/i);
    assert.match(setCookie, /; SameSite=Strict/i);
    cookie = setCookie.split(';')[0]!;
    const me = await json(await call('/api/me'), 200);
    assert.deepEqual(me, { user: 'alice', address: 'alice@rose', household: 'rose', admin: true });
  });

  it('mail: 201 {id}; inbox and sent newest first with the SPEC fields', async () => {
    for (const subject of ['first', 'second']) {
      const sent = (await json(await post('/api/mail', { to: ['alice@rose'], subject, body: `${subject} body` }), 201)) as Record<string, unknown>;
      assertShape(sent, { id: 'string' }, 'POST /api/mail');
      await new Promise((resolve) => setTimeout(resolve, 1100)); // dates have whole seconds
    }
    for (const folder of ['inbox', 'sent']) {
      const list = (await json(await call(`/api/mail?folder=${folder}`), 200)) as Array<Record<string, unknown>>;
      assert.equal(list.length, 2, folder);
      for (const m of list) {
        assertShape(m, { id: 'string', from: 'string', to: 'string[]', subject: 'string', body: 'string', date: 'string', read: 'boolean' }, folder);
        assert.ok(isoDate(m.date));
      }
      assert.deepEqual(list.map((m) => m.subject), ['second', 'first'], `${folder} newest first`);
    }
    assert.equal(await error(await call('/api/mail?folder=trash'), 400), 'bad_request');
  });

  it('chat: rooms with members null for a public room, messages oldest first', async () => {
    const room = (await json(await post('/api/chat/rooms', { name: 'street' }), 201)) as { id: string };
    assertShape(room, { id: 'string' }, 'POST /api/chat/rooms');
    const secret = (await json(await post('/api/chat/rooms', { name: 'just me', members: ['alice@rose'] }), 201)) as { id: string };
    const rooms = (await json(await call('/api/chat/rooms'), 200)) as Array<Record<string, unknown>>;
    for (const r of rooms) assertShape(r, { id: 'string', name: 'string', members: 'string[]|null' }, 'room');
    assert.equal(rooms.find((r) => r.id === room.id)?.members, null);
    assert.deepEqual(rooms.find((r) => r.id === secret.id)?.members, ['alice@rose']);
    for (const text of ['one', 'two', 'three']) assertShape(await json(await post(`/api/chat/rooms/${room.id}/messages`, { text }), 201), { id: 'string' }, 'POST message');
    const messages = (await json(await call(`/api/chat/rooms/${room.id}/messages`), 200)) as Array<Record<string, unknown>>;
    for (const m of messages) {
      assertShape(m, { id: 'string', from: 'string', text: 'string', date: 'string' }, 'message');
      assert.ok(isoDate(m.date));
    }
    assert.deepEqual(messages.map((m) => m.text), ['one', 'two', 'three']);
    assert.equal(await error(await call('/api/chat/rooms/0011223344556677/messages'), 404), 'room_not_found');
  });

  it('files: raw and multipart upload 201 {id,name,size}; the list; the bytes with Content-Disposition', async () => {
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256));
    const raw = (await json(await call('/api/files', { method: 'POST', headers: { 'x-file-name': encodeURIComponent('Bericht ü.bin') }, body: bytes }), 201)) as Record<string, unknown>;
    assertShape(raw, { id: 'string', name: 'string', size: 'number' }, 'POST /api/files');
    assert.deepEqual([raw.name, raw.size], ['Bericht ü.bin', bytes.length]);
    const form = new FormData();
    form.append('file', new Blob(['multi']), 'm.txt');
    assertShape(await json(await call('/api/files', { method: 'POST', body: form }), 201), { id: 'string', name: 'string', size: 'number' }, 'multipart');
    const list = (await json(await call('/api/files'), 200)) as Array<Record<string, unknown>>;
    for (const f of list) assertShape(f, { id: 'string', name: 'string', size: 'number', owner: 'string', shared_with: 'string[]|null', complete: 'boolean' }, 'file');
    assert.equal(list.find((f) => f.id === raw.id)?.complete, true);
    const down = await call(`/api/files/${String(raw.id)}`);
    assert.equal(down.status, 200);
    assert.equal(down.headers.get('content-disposition'), `attachment; filename="Bericht _.bin"; filename*=UTF-8''Bericht%20%C3%BC.bin`);
    assert.deepEqual(Buffer.from(await down.arrayBuffer()), bytes);
    assert.equal(await error(await call(`/api/files/${'ab'.repeat(32)}`), 404), 'file_not_found');
  });

  it('blog: 201 {id}, the list newest first, one post with its body', async () => {
    const ids: string[] = [];
    for (const title of ['older', 'newer']) {
      ids.push(((await json(await post('/api/blog', { title, body: `${title} *text*` }), 201)) as { id: string }).id);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const list = (await json(await call('/api/blog'), 200)) as Array<Record<string, unknown>>;
    for (const p of list) assertShape(p, { id: 'string', author: 'string', title: 'string', date: 'string' }, 'post');
    assert.deepEqual(list.map((p) => p.title), ['newer', 'older']);
    const one = (await json(await call(`/api/blog/${ids[0]!}`), 200)) as Record<string, unknown>;
    assertShape(one, { id: 'string', author: 'string', title: 'string', body: 'string', date: 'string' }, 'GET /api/blog/:id');
    assert.deepEqual([one.author, one.title, one.body], ['alice@rose', 'older', 'older *text*']);
  });

  it('status and metrics', async () => {
    const status = (await json(await call('/api/status'), 200)) as Record<string, unknown>;
    assertShape(status, { household: 'string', node_id: 'string', links: 'array', records: 'number', households_known: 'number', p2p: 'object|null' }, 'status');
    const metrics = await call('/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await metrics.text(), /^# TYPE citizen_records_stored gauge\ncitizen_records_stored \d+$/m);
  });

  it('errors: unknown route 404, wrong method 405, malformed JSON and wrong types 400, all in the error shape', async () => {
    assert.equal(await error(await call('/api/nothing'), 404), 'not_found');
    assert.equal(await error(await call('/api/me', { method: 'DELETE' }), 405), 'method_not_allowed');
    assert.equal(await error(await call('/api/mail', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"to":' }), 400), 'bad_request');
    assert.equal(await error(await post('/api/mail', { to: 'alice@rose', subject: 's', body: 'b' }), 400), 'bad_request');
    assert.equal(await error(await post('/api/blog', { title: 't' }), 400), 'bad_request');
  });

  it('logout: 204, and the session is over', async () => {
    const out = await call('/api/logout', { method: 'POST' });
    assert.equal(out.status, 204);
    assert.equal(await error(await call('/api/me'), 401), 'not_logged_in');
    assert.equal(await error(await call('/api/mail'), 401), 'not_logged_in');
  });
});
