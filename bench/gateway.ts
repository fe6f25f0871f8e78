/**
 * Gateway figures of issue 7, on this machine's loopback (not part of `npm run bench` yet):
 *
 *   node --import ./bin/node-compat.mjs --import tsx bench/gateway.ts
 *
 *  - records/s synced between two gateways over libp2p: household A holds N fresh records,
 *    B starts empty; the clock runs from B's link coming up until B holds all N;
 *  - SMTP messages/s accepted into the mesh: nodemailer over one pooled connection into
 *    gateway/smtp-in.ts, each message sealed to a mesh member and published;
 *  - memory with 100 libp2p peers connected to one gateway (heap and RSS growth).
 */
import { MemoryLevel } from 'memory-level';
import { randomBytes } from 'node:crypto';
import { createTransport } from 'nodemailer';
import { utf8 } from '../mesh/bytes.ts';
import { systemClock } from '../mesh/clock.ts';
import { Identity } from '../mesh/identity.ts';
import { MeshNode } from '../mesh/node.ts';
import { Priority, RecordKind } from '../mesh/record.ts';
import { RecordStore } from '../mesh/record-store.ts';
import { seal } from '../mesh/seal.ts';
import { Sync } from '../mesh/sync.ts';
import { createLibp2pLink, type Libp2pLink } from '../gateway/libp2p-link.ts';
import { createSmtpIn } from '../gateway/smtp-in.ts';

const timer = { setTimeout: (f: () => void, ms: number) => setTimeout(f, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };

async function makeNode(name: string): Promise<MeshNode> {
  const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
  const node = new MeshNode({ householdName: name }, { household: Identity.generate(), store, clock: systemClock });
  await node.start();
  return node;
}

async function benchSyncRate(records: number): Promise<void> {
  const [a, b] = [await makeNode('a'), await makeNode('b')];
  const author = Identity.generate();
  await a.certifyMember('m', author);
  for (let i = 0; i < records; i++) {
    await a.publish(author, { kind: RecordKind.Message, feed: new Uint8Array(8).fill(1), priority: Priority.Normal, payload: utf8(`record ${i} ${'x'.repeat(100)}`) });
  }
  const seeds = [new Uint8Array(randomBytes(32)), new Uint8Array(randomBytes(32))];
  // Both households' peers are bound by gateway statements (the larger per-peer rate).
  const bound = { clock: systemClock, householdOf: () => 'bench' };
  const linkA = await createLibp2pLink({ keySeed: seeds[0]!, listen: ['/ip4/127.0.0.1/tcp/0'] }, bound);
  await linkA.start();
  const addrA = linkA.addrs()[0]!;
  const linkB = await createLibp2pLink({ keySeed: seeds[1]!, listen: [], peers: [addrA] }, bound);
  const syncA = new Sync({ node: a, clock: systemClock, timer });
  const syncB = new Sync({ node: b, clock: systemClock, timer });
  syncA.addLink(linkA);
  syncB.addLink(linkB);
  await syncA.start();
  await syncB.start();
  const total = (await a.store.stats()).records;
  const began = performance.now();
  await linkB.start();
  while ((await b.store.stats()).records < total) await new Promise((r) => setTimeout(r, 20));
  const s = (performance.now() - began) / 1000;
  const dropped = { ...linkA.gatewayStats().dropped, ...linkB.gatewayStats().dropped };
  console.log(`libp2p sync, loopback      ${(total / s).toFixed(0).padStart(8)} records/s  (${total} records in ${s.toFixed(2)} s; frames dropped: ${JSON.stringify(dropped)}; frames A→B ${linkA.stats().framesOut}, B→A ${linkB.stats().framesOut}; throttled ${linkB.gatewayStats().throttled + linkA.gatewayStats().throttled})`);
  await syncA.stop();
  await syncB.stop();
  await linkA.stop();
  await linkB.stop();
}

async function benchLinkRate(frames: number, size: number): Promise<void> {
  const seeds = [new Uint8Array(randomBytes(32)), new Uint8Array(randomBytes(32))];
  const known = { knownFramesPerSecond: 1e9, knownBytesPerSecond: 1e12 };
  const a = await createLibp2pLink({ keySeed: seeds[0]!, listen: ['/ip4/127.0.0.1/tcp/0'], limits: known }, { clock: systemClock, householdOf: () => 'bench' });
  await a.start();
  const b = await createLibp2pLink({ keySeed: seeds[1]!, listen: [], peers: [a.addrs()[0]!], limits: known }, { clock: systemClock, householdOf: () => 'bench' });
  let got = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  a.on('frame', () => {
    if (++got === frames) done();
  });
  await b.start();
  while (!b.gatewayStats().peers.some((p) => p.sending)) await new Promise((r) => setTimeout(r, 10));
  const frame = new Uint8Array(size);
  const began = performance.now();
  for (let i = 0; i < frames; i++) {
    await b.send(frame);
    if (i % 256 === 255) await new Promise((r) => setImmediate(r));
  }
  await all;
  const s = (performance.now() - began) / 1000;
  console.log(`libp2p link alone          ${(frames / s).toFixed(0).padStart(8)} frames/s of ${size} bytes (${((frames * size * 8) / s / 1e6).toFixed(0)} Mbit/s, bound peers)`);
  await b.stop();
  await a.stop();
}

async function benchSmtp(messages: number): Promise<void> {
  const node = await makeNode('oak');
  const alice = Identity.generate();
  const server = createSmtpIn(
    { host: '127.0.0.1', port: 0, domain: 'mesh.test' },
    {
      isMember: () => true,
      deliver: async (mail) => {
        await node.publish(node.household, {
          kind: RecordKind.Mail,
          feed: new Uint8Array(8).fill(2),
          sealed: true,
          priority: Priority.Urgent,
          payload: seal(utf8(`${mail.from}\n${mail.subject}\n${mail.body}`), [alice.agreementKey], node.household.id, node.random),
        });
      },
    },
  );
  await server.start();
  const client = createTransport({ host: '127.0.0.1', port: server.address()!.port, secure: false, ignoreTLS: true, pool: true, maxConnections: 4 });
  const began = performance.now();
  await Promise.all(
    Array.from({ length: messages }, (_, i) =>
      client.sendMail({ from: 'bob@example.org', to: 'alice@rose.mesh.test', subject: `message ${i}`, text: 'A short internet mail. '.repeat(20) }),
    ),
  );
  const s = (performance.now() - began) / 1000;
  console.log(`SMTP in, sealed + stored   ${(messages / s).toFixed(0).padStart(8)} messages/s  (${messages} in ${s.toFixed(2)} s, 4 connections)`);
  client.close();
  await server.stop();
}

async function benchPeers(count: number): Promise<void> {
  const gateway = await createLibp2pLink({ keySeed: new Uint8Array(randomBytes(32)), listen: ['/ip4/127.0.0.1/tcp/0'], limits: { maxConnectionsPerHost: 1000, connectionsPerHostPerSecond: 1000, maxInboundConnections: 1000, maxConnections: 1000 } }, { clock: systemClock });
  await gateway.start();
  globalThis.gc?.();
  const before = process.memoryUsage();
  const peers: Libp2pLink[] = [];
  for (let i = 0; i < count; i++) {
    const peer = await createLibp2pLink({ keySeed: new Uint8Array(randomBytes(32)), listen: [], peers: [gateway.addrs()[0]!] }, { clock: systemClock });
    await peer.start();
    peers.push(peer);
  }
  while (gateway.gatewayStats().peers.filter((p) => p.sending).length < count) await new Promise((r) => setTimeout(r, 50));
  globalThis.gc?.();
  const after = process.memoryUsage();
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(`${count} peers on one gateway   heap +${mib(after.heapUsed - before.heapUsed)} MiB, rss +${mib(after.rss - before.rss)} MiB (both ends in one process: an upper bound for the gateway)`);
  await Promise.all(peers.map((p) => p.stop()));
  await gateway.stop();
}

const only = process.env.BENCH_ONLY;
if (!only || only === 'sync') await benchSyncRate(Number(process.env.BENCH_RECORDS ?? 2000));
if (!only || only === 'link') await benchLinkRate(20_000, 1000);
if (!only || only === 'smtp') await benchSmtp(Number(process.env.BENCH_MESSAGES ?? 300));
if (!only || only === 'peers') await benchPeers(Number(process.env.BENCH_PEERS ?? 100));
process.exit(0);
