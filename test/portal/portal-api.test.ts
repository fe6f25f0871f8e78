/**
 * The portal's app routes over real HTTP against an in-process daemon (real store, mesh node
 * and services): chat (public and sealed private rooms), blog (safe Markdown, comments),
 * files (streamed upload, limit, sanitised names, download headers, no traversal), live
 * updates (SSE), accounts (admin creates members, password change, logout everywhere), and
 * the page itself (CSP, no inline script).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../apps/daemon/accounts.ts';
import { startDaemon, type Daemon } from '../../apps/daemon/daemon.ts';
import { DataDir } from '../../apps/daemon/data-dir.ts';
import { sanitizeFileName } from '../../apps/files/file-name.ts';
import { Files } from '../../apps/files/files.ts';
import { renderMarkdown } from '../../apps/blog/markdown.ts';
import { eventually, login } from '../helpers/citizen.ts';

type Fetch = Awaited<ReturnType<typeof login>>;
const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('portal app routes (real HTTP, in-process node)', function () {
  this.timeout(60_000);
  let dir: string;
  let daemon: Daemon;
  let alice: Fetch;
  let bob: Fetch;
  let carol: Fetch;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'citizen-portal-'));
    const data = new DataDir(dir);
    data.init('rose');
    const accounts = createAccounts(data.accountsPath, { scryptCost: { N: 2 ** 10 } });
    await accounts.add('alice', 'alice password', { admin: true });
    await accounts.add('bob', 'bob password');
    await accounts.add('carol', 'carol password');
    daemon = await startDaemon({ dataDir: dir, portal: { host: '127.0.0.1', port: 0 }, maxFileBytes: 100_000 });
    alice = await login(daemon.url, 'alice', 'alice password');
    bob = await login(daemon.url, 'bob', 'bob password');
    carol = await login(daemon.url, 'carol', 'carol password');
  });

  after(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('mail', () => {
    it('pages a folder (limit, before), lists a thread, and shows each sent mail with its state', async () => {
      for (let i = 0; i < 7; i++) assert.equal((await carol('/api/mail', json({ to: ['bob@rose'], subject: i === 0 ? 'Paging' : i === 1 ? 'Re: paging' : `page ${i}`, body: `b${i}` }))).status, 201);
      type Mail = { id: string; subject: string; thread: string; size: number; state?: string };
      const first = (await (await bob('/api/mail?folder=inbox&limit=3')).json()) as Mail[];
      assert.equal(first.length, 3);
      const rest = (await (await bob(`/api/mail?folder=inbox&limit=100&before=${first.at(-1)!.id}`)).json()) as Mail[];
      const subjects = [...first, ...rest].filter((m) => /pag/i.test(m.subject)).map((m) => m.subject);
      assert.equal(subjects.length, 7);
      assert.equal(new Set([...first, ...rest].map((m) => m.id)).size, first.length + rest.length, 'no mail on two pages');
      const thread = (await (await bob('/api/mail?folder=inbox&thread=paging')).json()) as Mail[];
      assert.deepEqual(thread.map((m) => m.subject).sort(), ['Paging', 'Re: paging']);
      assert.equal(thread[0]!.thread, 'paging');
      assert.equal(thread[0]!.size, 2);
      const sent = (await (await carol('/api/mail?folder=sent&limit=2')).json()) as Mail[];
      assert.deepEqual(sent.map((m) => m.state), ['delivered', 'delivered'], 'a member of this household has it at once');
      assert.equal((await bob('/api/mail?folder=inbox&limit=abc')).status, 400);
      assert.equal((await bob('/api/mail?folder=inbox&before=../x')).status, 400);
    });
  });

  describe('chat', () => {
    it('creates a public room that every member sees and writes, messages oldest first with the signer as sender', async () => {
      const created = await alice('/api/chat/rooms', json({ name: 'street' }));
      assert.equal(created.status, 201);
      const { id } = (await created.json()) as { id: string };
      const rooms = (await (await bob('/api/chat/rooms')).json()) as Array<{ id: string; name: string; members: unknown }>;
      assert.deepEqual(rooms.find((r) => r.id === id), { id, name: 'street', members: null });
      assert.equal((await alice(`/api/chat/rooms/${id}/messages`, json({ text: 'hello street' }))).status, 201);
      const sent = await bob(`/api/chat/rooms/${id}/messages`, json({ text: '<b>hi</b>' }));
      assert.equal(sent.status, 201);
      const { id: messageId } = (await sent.json()) as { id: string };
      const messages = (await (await carol(`/api/chat/rooms/${id}/messages`)).json()) as Array<{ id: string; from: string; text: string; date: string }>;
      assert.deepEqual(messages.map((m) => [m.from, m.text]), [['alice@rose', 'hello street'], ['bob@rose', '<b>hi</b>']]);
      assert.equal(messages[1]!.id, messageId);
      const last = (await (await carol(`/api/chat/rooms/${id}/messages?limit=1`)).json()) as Array<{ text: string }>;
      assert.deepEqual(last.map((m) => m.text), ['<b>hi</b>']);
      assert.equal((await carol(`/api/chat/rooms/${id}/messages?limit=-1`)).status, 400);
      assert.ok(!Number.isNaN(Date.parse(messages[0]!.date)));
    });

    it('shows a new message and a new post at once, though it keeps read rooms and the blog list between requests', async () => {
      const { id } = (await (await alice('/api/chat/rooms', json({ name: 'cached' }))).json()) as { id: string };
      const texts = async () => ((await (await bob(`/api/chat/rooms/${id}/messages`)).json()) as Array<{ text: string }>).map((m) => m.text);
      assert.equal((await alice(`/api/chat/rooms/${id}/messages`, json({ text: 'one' }))).status, 201);
      assert.deepEqual(await texts(), ['one']);
      assert.deepEqual(await texts(), ['one']);
      assert.equal((await carol(`/api/chat/rooms/${id}/messages`, json({ text: 'two' }))).status, 201);
      assert.deepEqual(await texts(), ['one', 'two']);
      const titles = async () => ((await (await bob('/api/blog')).json()) as Array<{ title: string }>).map((p) => p.title);
      const before = await titles();
      assert.deepEqual(await titles(), before);
      assert.equal((await carol('/api/blog', json({ title: 'fresh off the press', body: 'x' }))).status, 201);
      assert.equal((await titles())[0], 'fresh off the press');
    });

    it('seals a private room to its members: others neither list nor read nor write it', async () => {
      const created = await alice('/api/chat/rooms', json({ name: 'secret', members: ['bob@rose'] }));
      assert.equal(created.status, 201);
      const { id } = (await created.json()) as { id: string };
      const bobRooms = (await (await bob('/api/chat/rooms')).json()) as Array<{ id: string; members: string[] | null }>;
      assert.deepEqual(bobRooms.find((r) => r.id === id)?.members, ['alice@rose', 'bob@rose']);
      const carolRooms = (await (await carol('/api/chat/rooms')).json()) as Array<{ id: string }>;
      assert.equal(carolRooms.find((r) => r.id === id), undefined);
      assert.equal((await bob(`/api/chat/rooms/${id}/messages`, json({ text: 'just us' }))).status, 201);
      const read = (await (await alice(`/api/chat/rooms/${id}/messages`)).json()) as Array<{ from: string; text: string }>;
      assert.deepEqual(read.map((m) => [m.from, m.text]), [['bob@rose', 'just us']]);
      const denied = await carol(`/api/chat/rooms/${id}/messages`);
      assert.equal(denied.status, 404);
      assert.deepEqual(Object.keys((await denied.json()) as object).sort(), ['error', 'message']);
      assert.equal((await carol(`/api/chat/rooms/${id}/messages`, json({ text: 'let me in' }))).status, 404);
      // Relays see ciphertext only: no record in the store holds the text.
      const records = await daemon.node.store.byFeed(Buffer.from(id, 'hex'));
      assert.ok(records.length >= 2 && records.every((r) => r.sealed && !Buffer.from(r.payload).includes('just us')));
    });

    it('creates a public room from "members": null, the way the room list writes one', async () => {
      const res = await alice('/api/chat/rooms', json({ name: 'null members', members: null }));
      assert.equal(res.status, 201);
      const { id } = (await res.json()) as { id: string };
      const rooms = (await (await bob('/api/chat/rooms')).json()) as Array<{ id: string; name: string; members: string[] | null }>;
      assert.deepEqual(rooms.find((r) => r.id === id), { id, name: 'null members', members: null });
    });

    it('refuses bad rooms and messages with the error shape', async () => {
      for (const [path, body, status, code] of [
        ['/api/chat/rooms', { name: '' }, 400, 'bad_room_name'],
        ['/api/chat/rooms', { name: 'nul\u0000room' }, 400, 'bad_room_name'],
        ['/api/chat/rooms', { name: '\u202eevil' }, 400, 'bad_room_name'],
        ['/api/chat/rooms', { name: 'x', members: ['nobody@nowhere'] }, 400, 'unknown_member'],
        ['/api/chat/rooms', { members: [] }, 400, 'bad_request'],
        ['/api/chat/rooms/00112233445566ff/messages', { text: 'hi' }, 404, 'room_not_found'],
        ['/api/chat/rooms/..%2F..%2Fetc/messages', { text: 'hi' }, 404, 'room_not_found'],
      ] as const) {
        const res = await alice(path, json(body));
        assert.equal(res.status, status, path);
        assert.equal(((await res.json()) as { error: string }).error, code);
      }
      assert.equal((await fetch(`${daemon.url}/api/chat/rooms`)).status, 401);
    });
  });

  describe('blog', () => {
    it('publishes a post, lists it newest first, renders Markdown safely and takes comments', async () => {
      const body = '# Hello\n\nSome **bold** and a [link](https://example.org).\n\n<script>alert(1)</script>\n[bad](javascript:alert(1)) <img src=x onerror=alert(1)>';
      const created = await alice('/api/blog', json({ title: 'First <post>', body }));
      assert.equal(created.status, 201);
      const { id } = (await created.json()) as { id: string };
      await alice('/api/blog', json({ title: 'Second', body: 'later' }));
      const list = (await (await bob('/api/blog')).json()) as Array<{ id: string; author: string; title: string; date: string }>;
      assert.deepEqual(Object.keys(list[0]!).sort(), ['author', 'date', 'id', 'title']);
      assert.ok(list.findIndex((p) => p.title === 'Second') <= list.findIndex((p) => p.id === id));
      const post = (await (await bob(`/api/blog/${id}`)).json()) as { id: string; author: string; title: string; body: string; html: string; date: string };
      assert.equal(post.author, 'alice@rose');
      assert.equal(post.body, body);
      assert.match(post.html, /<h4>Hello<\/h4>/);
      assert.match(post.html, /<strong>bold<\/strong>/);
      assert.match(post.html, /<a href="https:\/\/example.org" rel="noopener noreferrer nofollow">link<\/a>/);
      assert.ok(!/<script|<img|href="javascript/i.test(post.html), post.html);
      assert.match(post.html, /&lt;script&gt;/);
      const comment = await bob(`/api/blog/${id}/comments`, json({ text: 'nice' }));
      assert.equal(comment.status, 201);
      const again = (await (await carol(`/api/blog/${id}`)).json()) as { comments: Array<{ from: string; text: string }> };
      assert.deepEqual(again.comments.map((c) => [c.from, c.text]), [['bob@rose', 'nice']]);
      for (const [path, init, status, code] of [
        ['/api/blog/0011223344556677', undefined, 404, 'post_not_found'],
        ['/api/blog/../../etc', undefined, 404, 'not_found'],
        ['/api/blog', json({ title: '', body: 'x' }), 400, 'bad_title'],
        ['/api/blog', json({ title: 'line\nbreak', body: 'x' }), 400, 'bad_title'],
        ['/api/blog', json({ title: 'exe.\u202etxt', body: 'x' }), 400, 'bad_title'],
        ['/api/blog', json({ title: 'x' }), 400, 'bad_request'],
        ['/api/blog', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":' }, 400, 'bad_request'],
        [`/api/blog/${id}/comments`, json({ text: ' ' }), 400, 'empty_comment'],
        ['/api/blog/0011223344556677/comments', json({ text: 'hi' }), 404, 'post_not_found'],
      ] as const) {
        const res = await bob(path, init);
        assert.equal(res.status, status, path);
        const error = (await res.json()) as { error: string; message: string };
        assert.equal(error.error, code, path);
        assert.equal(typeof error.message, 'string');
      }
      assert.equal((await fetch(`${daemon.url}/api/blog`)).status, 401);
    });

    it('renders no author markup whatever the input (escaping first)', () => {
      for (const evil of ['<svg onload=alert(1)>', '[x](javascript:alert(1))', '[x](" onmouseover="alert(1))', '`<b>`', '**<i>**', '> <iframe>', '```\n</code><script>\n```']) {
        const html = renderMarkdown(evil);
        assert.ok(!/<(?!\/?(p|h[4-6]|ul|ol|li|blockquote|pre|code|strong|em|br|a href="(https?:|mailto:)[^"<>]*" rel="noopener noreferrer nofollow")>)/.test(html), `${evil} → ${html}`);
      }
    });
  });

  describe('files', () => {
    const bytes = Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 7) % 256));

    it('uploads a stream in chunks with a signed manifest, lists it and downloads the same bytes as an attachment', async () => {
      const res = await alice('/api/files', {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-file-name': encodeURIComponent('../../etc/Réport "Q1".pdf'), 'x-share-with': 'neighbourhood' },
        body: bytes,
      });
      assert.equal(res.status, 201);
      const created = (await res.json()) as { id: string; name: string; size: number };
      assert.deepEqual({ name: created.name, size: created.size }, { name: 'Réport _Q1_.pdf', size: bytes.length });
      const list = (await (await bob('/api/files')).json()) as Array<Record<string, unknown>>;
      assert.deepEqual(list.find((f) => f.id === created.id), { id: created.id, name: 'Réport _Q1_.pdf', size: bytes.length, owner: 'alice@rose', shared_with: null, complete: true, date: list.find((f) => f.id === created.id)!.date });
      const down = await bob(`/api/files/${created.id}`);
      assert.equal(down.status, 200);
      assert.equal(down.headers.get('content-type'), 'application/octet-stream');
      assert.equal(down.headers.get('content-disposition'), `attachment; filename="R_port _Q1_.pdf"; filename*=UTF-8''R%C3%A9port%20_Q1_.pdf`);
      assert.match(down.headers.get('content-security-policy') ?? '', /sandbox/);
      assert.deepEqual(Buffer.from(await down.arrayBuffer()), bytes);
      const { RecordKind, Priority } = await import('../../mesh/record.ts');
      const chunks = [];
      for await (const r of daemon.node.store.records()) if (r.kind === RecordKind.BlobChunk) chunks.push(r);
      assert.ok(chunks.length >= 3 && chunks.every((c) => c.priority === Priority.Bulk));
    });

    it('shares a file with chosen members only (sealed)', async () => {
      const res = await alice('/api/files', { method: 'POST', headers: { 'x-file-name': 'plan.txt', 'x-share-with': 'bob@rose' }, body: 'for bob' });
      assert.equal(res.status, 201);
      const { id } = (await res.json()) as { id: string };
      assert.equal((await (await bob(`/api/files/${id}`)).text()), 'for bob');
      assert.equal((await carol(`/api/files/${id}`)).status, 404);
      const carolList = (await (await carol('/api/files')).json()) as Array<{ id: string }>;
      assert.equal(carolList.find((f) => f.id === id), undefined);
      const bobList = (await (await bob('/api/files')).json()) as Array<{ id: string; shared_with: string[] }>;
      assert.deepEqual(bobList.find((f) => f.id === id)?.shared_with, ['alice@rose', 'bob@rose']);
    });

    it('takes a multipart upload in the field "file" too, with the same limit', async () => {
      const form = new FormData();
      form.append('file', new Blob([Buffer.from('multipart bytes')]), '../evil/<list>.txt');
      const res = await alice('/api/files', { method: 'POST', body: form });
      assert.equal(res.status, 201);
      const created = (await res.json()) as { id: string; name: string; size: number };
      assert.deepEqual({ name: created.name, size: created.size }, { name: '_list_.txt', size: 15 });
      assert.equal(await (await alice(`/api/files/${created.id}`)).text(), 'multipart bytes');
      const big = new FormData();
      big.append('file', new Blob([new Uint8Array(100_001)]), 'big.bin');
      const refused = await alice('/api/files', { method: 'POST', body: big });
      assert.equal(refused.status, 413);
      assert.equal(((await refused.json()) as { error: string }).error, 'file_too_large');
      const wrong = new FormData();
      wrong.append('other', new Blob(['x']), 'x.txt');
      assert.equal((await alice('/api/files', { method: 'POST', body: wrong })).status, 400);
    });

    it('reads an X-File-Name sent as raw UTF-8 bytes (curl, HTTP libraries) as UTF-8, and a Latin-1 one as Latin-1', async () => {
      // Node hands header bytes over as Latin-1 characters: these strings put those bytes on the wire.
      for (const [sent, expected] of [
        [Buffer.from('résumé 日本.txt').toString('latin1'), 'résumé 日本.txt'],
        [Buffer.from('café.txt', 'latin1').toString('latin1'), 'café.txt'],
        [encodeURIComponent('ünï.txt'), 'ünï.txt'],
        ['100%.txt', '100%.txt'],
      ]) {
        const res = await alice('/api/files', { method: 'POST', headers: { 'x-file-name': sent! }, body: 'named' });
        assert.equal(res.status, 201);
        const created = (await res.json()) as { id: string; name: string };
        assert.equal(created.name, expected);
        const down = await alice(`/api/files/${created.id}`);
        assert.equal(down.headers.get('content-disposition'), `attachment; filename="${expected!.replace(/[^\x20-\x7e]/g, '_').replace(/%/g, '_')}"; filename*=UTF-8''${encodeURIComponent(expected!)}`);
      }
    });

    it('stores an empty file however it is sent: empty untyped body, octet-stream, multipart', async () => {
      const sends: RequestInit[] = [
        { method: 'POST', headers: { 'x-file-name': 'empty-blob.txt' }, body: new Blob([]) },
        { method: 'POST', headers: { 'x-file-name': 'empty-bytes.txt' }, body: new Uint8Array(0) },
        { method: 'POST', headers: { 'x-file-name': 'empty-typed.txt', 'content-type': 'application/octet-stream' }, body: new Uint8Array(0) },
        { method: 'POST', body: (() => { const form = new FormData(); form.append('file', new Blob([]), 'empty-form.txt'); return form; })() },
      ];
      for (const init of sends) {
        const res = await alice('/api/files', init);
        assert.equal(res.status, 201, await res.clone().text());
        const created = (await res.json()) as { id: string; name: string; size: number };
        assert.equal(created.size, 0);
        const listed = ((await (await alice('/api/files')).json()) as Array<{ id: string; size: number; complete: boolean }>).find((f) => f.id === created.id);
        assert.deepEqual({ size: listed?.size, complete: listed?.complete }, { size: 0, complete: true });
        const down = await alice(`/api/files/${created.id}`);
        assert.equal(down.status, 200);
        assert.equal((await down.arrayBuffer()).byteLength, 0);
      }
      // With neither a name nor a body there is nothing to store.
      const nothing = await alice('/api/files', { method: 'POST', body: new Uint8Array(0) });
      assert.equal(nothing.status, 400);
      assert.equal(((await nothing.json()) as { error: string }).error, 'no_file');
    });

    it('answers a malformed or cut-short multipart body 400 bad_multipart, too many parts 413, never a 500', async () => {
      const multipart = (body: string, type = 'multipart/form-data; boundary=abc'): RequestInit => ({ method: 'POST', headers: { 'content-type': type }, body });
      const part = '--abc\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello';
      for (const [init, status, code] of [
        [multipart('xx', 'multipart/form-data'), 400, 'bad_multipart'], // no boundary
        [multipart('garbage'), 400, 'bad_multipart'],
        [multipart(part), 400, 'bad_multipart'], // cut short: no closing boundary
        [multipart(`${part}\r\n--abc--\r\n`), 201, undefined],
        [{ method: 'POST', body: (() => { const form = new FormData(); for (const n of 'abcde') form.append(n, '1'); form.append('file', new Blob(['x']), 'x.txt'); return form; })() }, 413, 'too_many_parts'],
      ] as const) {
        const res = await alice('/api/files', init);
        assert.equal(res.status, status);
        const body = (await res.json()) as Record<string, unknown>;
        if (code === undefined) assert.equal(body.size, 5);
        else assert.deepEqual({ error: body.error, keys: Object.keys(body).sort() }, { error: code, keys: ['error', 'message'] });
      }
    });

    it('refuses a file over the limit with 413 file_too_large, declared or streamed', async () => {
      const big = Buffer.alloc(100_001);
      const declared = await alice('/api/files', { method: 'POST', headers: { 'x-file-name': 'big.bin' }, body: big });
      assert.equal(declared.status, 413);
      assert.equal(((await declared.json()) as { error: string }).error, 'file_too_large');
      const streamed = await alice('/api/files', {
        method: 'POST',
        headers: { 'x-file-name': 'big.bin' },
        body: new ReadableStream({ start(c) { c.enqueue(new Uint8Array(60_000)); c.enqueue(new Uint8Array(60_000)); c.close(); } }),
        duplex: 'half',
      } as RequestInit);
      assert.equal(streamed.status, 413);
      assert.equal(((await streamed.json()) as { error: string }).error, 'file_too_large');
    });

    it('leaves no chunk behind when an upload fails, is aborted mid-way, or was cut short by a crash', async () => {
      const { RecordKind } = await import('../../mesh/record.ts');
      const { store } = daemon.node;
      const chunkRecords = async () => {
        let n = 0;
        for await (const r of store.records()) if (r.kind === RecordKind.BlobChunk) n++;
        return n;
      };
      const staged = async () => (await store.listLocal('file-upload/')).length;
      const before = await chunkRecords();
      // Over the limit after several chunks were staged.
      const streamed = await alice('/api/files', {
        method: 'POST',
        headers: { 'x-file-name': 'big.bin' },
        body: new ReadableStream({ start(c) { for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(30_000)); c.close(); } }),
        duplex: 'half',
      } as RequestInit);
      assert.equal(streamed.status, 413);
      assert.equal(await chunkRecords(), before, 'no chunk record from the refused upload');
      assert.equal(await staged(), 0, 'nothing staged is left');

      // The connection drops mid-upload. Real time, bounded: the server notices when it does.
      const loggedIn = await fetch(`${daemon.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice', password: 'alice password' }) });
      const cookie = (loggedIn.headers.get('set-cookie') ?? '').split(';')[0]!;
      const url = new URL('/api/files', daemon.url);
      const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'x-file-name': 'half.bin', 'transfer-encoding': 'chunked', cookie } });
      req.on('error', () => undefined);
      req.write(Buffer.alloc(40_000, 1));
      await eventually('the upload has staged chunks', async () => ((await staged()) > 0 ? true : undefined), 10_000, 20);
      req.destroy();
      await eventually('the aborted upload is cleaned up', async () => ((await staged()) === 0 ? true : undefined), 10_000, 20);
      assert.equal(await chunkRecords(), before, 'no chunk record from the aborted upload');

      // A crash mid-upload leaves stages: the next Files removes them before its first upload.
      await store.putLocal('file-upload/0123456789abcdef/00000000', Buffer.from('left over').toString('base64'));
      const data = new DataDir(dir);
      const files = new Files({ node: daemon.node, memberIdentity: async (name) => data.memberIdentity(name) });
      async function* body() {
        yield Buffer.from('small');
      }
      const created = await files.upload('alice', { name: 'after-crash.txt', shareWith: null, body: body() });
      assert.equal(created.size, 5);
      assert.equal(await staged(), 0, 'the stale stage is gone');
      assert.equal(await chunkRecords(), before + 1, 'only the finished upload published its chunk');
    });

    it('answers 404 to made-up ids and traversal attempts, never a file from disk', async () => {
      const missing = await alice('/api/files/0000000000000000000000000000000000000000000000000000000000000000');
      assert.deepEqual(Object.keys((await missing.json()) as object).sort(), ['error', 'message']);
      assert.equal((await fetch(`${daemon.url}/api/files`)).status, 401);
      for (const path of ['/api/files/0000000000000000000000000000000000000000000000000000000000000000', '/api/files/..%2F..%2Fpackage.json', '/api/files/%2e%2e', '/ui/..%2F..%2F..%2Fpackage.json', '/ui/static.ts']) {
        const res = await alice(path);
        assert.equal(res.status, 404, path);
        assert.ok(!(await res.text()).includes('citizen-cloud'), path);
      }
      const raw = await new Promise<number>((resolve, reject) => {
        const u = new URL(daemon.url);
        const req = httpRequest({ host: u.hostname, port: u.port, path: '/ui/../../package.json' }, (r) => resolve(r.statusCode!));
        req.on('error', reject).end();
      });
      assert.equal(raw, 404);
    });

    it('sanitises names: no directories, control or reserved characters, leading dots', () => {
      assert.equal(sanitizeFileName('../../etc/passwd'), 'passwd');
      assert.equal(sanitizeFileName('C:\\Users\\x\\evil.exe'), 'evil.exe');
      assert.equal(sanitizeFileName('..'), 'file');
      assert.equal(sanitizeFileName('.bashrc'), 'bashrc');
      assert.equal(sanitizeFileName('a\u0000b\nc<d>.txt'), 'a_b_c_d_.txt');
      assert.equal(sanitizeFileName('gnp.\u202eexe'), 'gnp._exe');
      assert.ok(Buffer.byteLength(sanitizeFileName('é'.repeat(500))) <= 200);
    });
  });

  describe('live updates (SSE)', () => {
    it('tells a member about a new message in a room and in a private room of theirs, not in others', async () => {
      const room = ((await (await alice('/api/chat/rooms', json({ name: 'live' }))).json()) as { id: string }).id;
      const secret = ((await (await alice('/api/chat/rooms', json({ name: 'ab', members: ['bob@rose'] }))).json()) as { id: string }).id;
      const controller = new AbortController();
      const res = await carol('/api/events', { signal: controller.signal });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      const reader = res.body!.getReader();
      let seen = '';
      const until = async (pattern: RegExp) => {
        const deadline = Date.now() + 5000; // real sockets: bounded
        while (!pattern.test(seen) && Date.now() < deadline) {
          const { value, done } = await reader.read();
          if (done) break;
          seen += Buffer.from(value).toString();
        }
      };
      await until(/retry/);
      await bob(`/api/chat/rooms/${secret}/messages`, json({ text: 'private' }));
      await bob(`/api/chat/rooms/${room}/messages`, json({ text: 'public' }));
      await until(new RegExp(room));
      controller.abort();
      assert.match(seen, new RegExp(`event: chat\\ndata: \\{"type":"chat","id":"${room}"\\}`));
      assert.ok(!seen.includes(secret), 'a private room leaks to a non-member');
      assert.equal((await fetch(`${daemon.url}/api/events`)).status, 401);
    });

    it('answers HEAD /api/events with the headers at once, instead of a stream that never ends', async () => {
      const res = await alice('/api/events', { method: 'HEAD', signal: AbortSignal.timeout(3000) });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    });
  });

  describe('accounts', () => {
    it('lets the admin create a member (who can log in and has an address) and no one else', async () => {
      assert.equal((await bob('/api/accounts', json({ user: 'dave', password: 'dave password' }))).status, 403);
      assert.equal((await bob('/api/accounts')).status, 403);
      const created = await alice('/api/accounts', json({ user: 'Dave', password: 'dave password' }));
      assert.equal(created.status, 201);
      assert.deepEqual(Object.keys((await created.json()) as object).sort(), ['admin', 'created', 'name']);
      assert.equal((await alice('/api/accounts', json({ user: 'dave', password: 'dave password' }))).status, 409);
      assert.equal((await alice('/api/accounts', json({ user: 'eve', password: 'short' }))).status, 400);
      const dave = await login(daemon.url, 'dave', 'dave password');
      assert.equal(((await (await dave('/api/me')).json()) as { address: string }).address, 'dave@rose');
      assert.ok(((await (await alice('/api/directory')).json()) as string[]).includes('dave@rose'));
      const list = (await (await alice('/api/accounts')).json()) as Array<Record<string, unknown>>;
      assert.ok(list.some((a) => a.name === 'dave') && list.every((a) => !('password' in a)));
    });

    it('changes a password (the old one and other sessions stop working), and logs out everywhere', async () => {
      await alice('/api/accounts', json({ user: 'frank', password: 'frank password' }));
      const phone = await login(daemon.url, 'frank', 'frank password');
      const laptop = await login(daemon.url, 'frank', 'frank password');
      assert.equal((await laptop('/api/me/password', json({ current: 'wrong one!', password: 'new frank password' }))).status, 401);
      const changed = await laptop('/api/me/password', json({ current: 'frank password', password: 'new frank password' }));
      assert.equal(changed.status, 204);
      const cookie = (changed.headers.get('set-cookie') ?? '').split(';')[0]!;
      assert.match(changed.headers.get('set-cookie') ?? '', /HttpOnly/i);
      assert.equal((await phone('/api/me')).status, 401);
      assert.equal((await fetch(`${daemon.url}/api/me`, { headers: { cookie } })).status, 200);
      await assert.rejects(login(daemon.url, 'frank', 'frank password'));
      const again = await login(daemon.url, 'frank', 'new frank password');
      const stream = await again('/api/events');
      const reader = stream.body!.getReader();
      await reader.read(); // "retry: ..."
      assert.equal((await again('/api/logout-all', { method: 'POST' })).status, 204);
      // The live-update stream of a logged-out session ends at its next event.
      const room = ((await (await alice('/api/chat/rooms', json({ name: 'after logout' }))).json()) as { id: string }).id;
      await alice(`/api/chat/rooms/${room}/messages`, json({ text: 'anyone?' }));
      for (let i = 0; i < 5; i++) if ((await reader.read()).done) break;
      assert.equal((await reader.read()).done, true);
      assert.equal((await again('/api/me')).status, 401);
      assert.equal((await fetch(`${daemon.url}/api/me`, { headers: { cookie } })).status, 401);
    });
  });

  describe('the page', () => {
    it('serves the portal with a CSP that allows no inline script, and its assets from this origin only', async () => {
      const res = await fetch(`${daemon.url}/`);
      assert.equal(res.status, 200);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'self'/);
      assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'));
      const html = await res.text();
      assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), 'inline script');
      assert.ok(!/\son[a-z]+=/i.test(html), 'inline event handler');
      assert.ok(!/(?:src|href)="(?:https?:)?\/\//i.test(html), 'a resource from another origin');
      for (const [, path] of html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)) assert.equal((await fetch(`${daemon.url}${path}`)).status, 200, path);
    });

    it('refuses the app routes from a foreign Origin (403) or Host (421)', async () => {
      const evil = await alice('/api/chat/rooms', { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body: '{"name":"x"}' });
      assert.equal(evil.status, 403);
      const upload = await alice('/api/files', { method: 'POST', headers: { 'x-file-name': 'a', 'sec-fetch-site': 'cross-site' }, body: 'x' });
      assert.equal(upload.status, 403);
      const rebinding = await new Promise<number>((resolve, reject) => {
        const u = new URL(daemon.url);
        httpRequest({ host: u.hostname, port: u.port, path: '/', headers: { host: 'evil.example' } }, (r) => resolve(r.statusCode!)).on('error', reject).end();
      });
      assert.equal(rebinding, 421);
    });
  });
});
