/**
 * Two households linked by UDP on 127.0.0.1 (two in-process daemons, each with its own
 * store, mesh node and sync): a blog post, a public room with its messages, a comment and a
 * mail written at rose reach oak through the mesh (and oak's receipt for the mail comes back), and
 * oak's comment comes back.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../apps/daemon/accounts.ts';
import { startDaemon, type Daemon } from '../../apps/daemon/daemon.ts';
import { DataDir } from '../../apps/daemon/data-dir.ts';
import { eventually, login } from '../helpers/citizen.ts';

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('portal apps across two households linked by UDP', function () {
  this.timeout(90_000);
  const root = mkdtempSync(join(tmpdir(), 'citizen-pair-'));
  const daemons: Daemon[] = [];

  after(async () => {
    for (const d of daemons) await d.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('carries a blog post, a public room, comments and a mail to the neighbour', async () => {
    const [a, b] = [await freeUdpPort(), await freeUdpPort()];
    for (const [name, user, port, peer] of [['rose', 'alice', a, b], ['oak', 'olive', b, a]] as const) {
      const dir = join(root, name);
      const data = new DataDir(dir);
      data.init(name);
      await createAccounts(data.accountsPath, { scryptCost: { N: 2 ** 10 } }).add(user, `${user} password`, { admin: true });
      daemons.push(await startDaemon({ dataDir: dir, portal: { host: '127.0.0.1', port: 0 }, links: [`udp://127.0.0.1:${port}?peer=127.0.0.1:${peer}`] }));
    }
    const [rose, oak] = daemons as [Daemon, Daemon];
    const alice = await login(rose.url, 'alice', 'alice password');
    const olive = await login(oak.url, 'olive', 'olive password');

    const post = ((await (await alice('/api/blog', json({ title: 'Hello oak', body: 'From **rose**' }))).json()) as { id: string }).id;
    const room = ((await (await alice('/api/chat/rooms', json({ name: 'street' }))).json()) as { id: string }).id;
    assert.equal((await alice(`/api/chat/rooms/${room}/messages`, json({ text: 'hi neighbours' }))).status, 201);
    assert.equal((await alice('/api/mail', json({ to: ['olive@oak'], subject: 'over the fence', body: 'hello olive' }))).status, 201);

    const seen = await eventually('the post at oak', async () => {
      const res = await olive(`/api/blog/${post}`);
      return res.status === 200 ? ((await res.json()) as { author: string; html: string }) : undefined;
    });
    assert.equal(seen.author, 'alice@rose');
    assert.match(seen.html, /<strong>rose<\/strong>/);
    const messages = await eventually('the room at oak', async () => {
      const res = await olive(`/api/chat/rooms/${room}/messages`);
      const list = res.status === 200 ? ((await res.json()) as Array<{ from: string; text: string }>) : [];
      return list.length > 0 ? list : undefined;
    });
    assert.deepEqual(messages.map((m) => [m.from, m.text]), [['alice@rose', 'hi neighbours']]);
    const mail = await eventually('the mail at oak', async () => {
      const list = (await (await olive('/api/mail?folder=inbox')).json()) as Array<{ from: string; subject: string }>;
      return list.length > 0 ? list : undefined;
    });
    assert.deepEqual(mail.map((m) => [m.from, m.subject]), [['alice@rose', 'over the fence']]);
    // oak acknowledged it with a receipt that sync carried back: rose's Sent says delivered.
    await eventually('the mail shown delivered at rose', async () => {
      const sent = (await (await alice('/api/mail?folder=sent')).json()) as Array<{ subject: string; state: string }>;
      return sent.find((m) => m.subject === 'over the fence')?.state === 'delivered' ? true : undefined;
    });

    assert.equal((await olive(`/api/chat/rooms/${room}/messages`, json({ text: 'hello from oak' }))).status, 201);
    assert.equal((await olive(`/api/blog/${post}/comments`, json({ text: 'lovely' }))).status, 201);
    await eventually('oak\'s reply at rose', async () => {
      const list = (await (await alice(`/api/chat/rooms/${room}/messages`)).json()) as Array<{ from: string }>;
      const post1 = (await (await alice(`/api/blog/${post}`)).json()) as { comments: Array<{ from: string; text: string }> };
      return list.some((m) => m.from === 'olive@oak') && post1.comments.some((c) => c.from === 'olive@oak' && c.text === 'lovely') ? true : undefined;
    });
  });
});
