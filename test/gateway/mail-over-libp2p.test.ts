/**
 * Two real `citizen start` processes linked by libp2p alone on 127.0.0.1 (no radio, no UDP):
 * rose listens, oak keeps a session with rose (--p2p-peer). Sealed mail goes rose → oak; each
 * household's gateway statement binds its libp2p peer id to its key, so each sees the other's
 * peer as that household; /api/status shows `p2p.peer_id` and full `p2p.addrs` (SPEC §4).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { citizen, eventually, login, startNode, stopNode, type RunningNode } from '../helpers/citizen.ts';
import { freePort } from '../helpers/net.ts';

interface P2p {
  peer_id: string;
  addrs: string[];
  connections: number;
  peers: { peer_id: string; household: string | null; sending: boolean }[];
}

interface Status {
  households_known: number;
  links: { spec: string; up: boolean; neighbours: number; frames_in: number }[];
  p2p: P2p | null;
}

async function status(portal: number): Promise<Status> {
  return (await (await fetch(`http://127.0.0.1:${portal}/api/status`)).json()) as Status;
}

describe('mail between two households over libp2p alone (issue 7)', function () {
  this.timeout(90_000);
  const root = mkdtempSync(join(tmpdir(), 'citizen-p2p-'));
  const nodes: RunningNode[] = [];
  const portals = { rose: 0, oak: 0 };
  let roseAddr = '';

  before(async () => {
    for (const name of ['rose', 'oak'] as const) {
      assert.equal((await citizen(['init', '--name', name, '--data', join(root, name)])).code, 0);
      const add = await citizen(['user', 'add', 'alice', '--admin', '--password-stdin', '--data', join(root, name)], `alice of ${name}\n`);
      assert.equal(add.code, 0, add.stderr);
      portals[name] = await freePort();
    }
    const roseP2p = await freePort();
    nodes.push(await startNode(['--data', join(root, 'rose'), '--portal', `127.0.0.1:${portals.rose}`, '--p2p-listen', `/ip4/127.0.0.1/tcp/${roseP2p}`]));
    const rose = await status(portals.rose);
    roseAddr = rose.p2p!.addrs.find((a) => a.startsWith(`/ip4/127.0.0.1/tcp/${roseP2p}/`))!;
    const oakP2p = await freePort();
    nodes.push(
      await startNode(['--data', join(root, 'oak'), '--portal', `127.0.0.1:${portals.oak}`, '--p2p-listen', `/ip4/127.0.0.1/tcp/${oakP2p}/ws`, '--p2p-peer', roseAddr]),
    );
  });

  after(async () => {
    await Promise.all(nodes.map(stopNode));
    rmSync(root, { recursive: true, force: true });
  });

  it('shows the peer id and full multiaddrs in /api/status', async () => {
    const [rose, oak] = [await status(portals.rose), await status(portals.oak)];
    for (const s of [rose, oak]) {
      assert.match(s.p2p!.peer_id, /^12D3KooW/);
      assert.ok(s.p2p!.addrs.length > 0);
      for (const a of s.p2p!.addrs) assert.ok(a.endsWith(`/p2p/${s.p2p!.peer_id}`), a);
    }
    assert.ok(oak.p2p!.addrs.some((a) => a.includes('/ws/')), 'oak listens on WebSockets');
    assert.ok(roseAddr.endsWith(rose.p2p!.peer_id));
  });

  it('the households learn each other over libp2p, each peer bound to its household', async () => {
    await eventually('both households known, peers bound', async () => {
      const [rose, oak] = [await status(portals.rose), await status(portals.oak)];
      const bound = (s: Status, name: string) => s.p2p!.peers.some((p) => p.household === name && p.sending);
      return rose.households_known === 2 && oak.households_known === 2 && bound(rose, 'oak') && bound(oak, 'rose') ? true : undefined;
    });
  });

  it('sealed mail from alice@rose reaches alice@oak', async () => {
    const rose = await login(`http://127.0.0.1:${portals.rose}`, 'alice', 'alice of rose');
    const sent = await rose('/api/mail', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: ['alice@oak'], subject: 'Over the internet', body: 'No radio between us.' }),
    });
    assert.equal(sent.status, 201, await sent.clone().text());
    const oak = await login(`http://127.0.0.1:${portals.oak}`, 'alice', 'alice of oak');
    const mail = await eventually('the mail at oak', async () => {
      const box = (await (await oak('/api/mail?folder=inbox')).json()) as { from: string; subject: string; body: string }[];
      return box.length > 0 ? box : undefined;
    });
    assert.equal(mail.length, 1);
    assert.equal(mail[0]!.from, 'alice@rose');
    assert.equal(mail[0]!.body, 'No radio between us.');
    const link = (await status(portals.oak)).links.find((l) => l.spec.startsWith('libp2p'))!;
    assert.equal(link.up, true);
    assert.ok(link.neighbours >= 1 && link.frames_in > 0);
  });
});
