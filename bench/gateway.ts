/**
 * Gateway figures of issue 7, on this machine's loopback (not part of `npm run bench` yet):
 *
 *   node --expose-gc --import ./bin/node-compat.mjs --import tsx bench/gateway.ts
 *
 *  - records/s synced between two gateways over libp2p: household A holds N fresh records,
 *    B starts empty; the clock runs from B's link coming up until B holds all N;
 *  - SMTP messages/s accepted into the mesh: nodemailer over 4 pooled connections into
 *    gateway/smtp-in.ts and the real mail bridge (apps/mail/mail-gateway.ts: SPF/DKIM/DMARC,
 *    sealed to a member by Mailbox.deliverAsHousehold, stored); once with a resolver that
 *    answers at once (the bridge's own cost) and once with this machine's DNS;
 *  - memory with 100 libp2p peers connected to one gateway: the gateway runs in a child
 *    process of its own, whose RSS and heap are read before and after the peers connect.
 */
import { MemoryLevel } from 'memory-level';
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createTransport } from 'nodemailer';
import { utf8 } from '../mesh/bytes.ts';
import { systemClock } from '../mesh/clock.ts';
import { Identity, keyId } from '../mesh/identity.ts';
import { MeshNode } from '../mesh/node.ts';
import { Priority, RecordKind } from '../mesh/record.ts';
import { RecordStore } from '../mesh/record-store.ts';
import { Sync } from '../mesh/sync.ts';
import { createLibp2pLink, type Libp2pLink } from '../gateway/libp2p-link.ts';
import { createSmtpIn } from '../gateway/smtp-in.ts';
import { MailGateway } from '../apps/mail/mail-gateway.ts';
import { Mailbox } from '../apps/mail/mailbox.ts';

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

async function benchSmtp(messages: number, dns: 'instant' | 'system'): Promise<void> {
  // The gateway is oak; the recipient, alice, lives at rose (as on the internet: the gateway only seals).
  const rose = await makeNode('rose');
  const alice = Identity.generate();
  await rose.certifyMember('alice', alice);
  const node = await makeNode('oak');
  const directory: Uint8Array[] = [];
  for await (const r of rose.store.records()) directory.push(r.bytes);
  await node.ingest(directory);
  const mailbox = new Mailbox({ node, memberIdentity: async () => Identity.generate() });
  const bridge = new MailGateway({ node, mailbox, domain: 'mesh.test' });
  const notFound = async (name: string): Promise<string[][]> => {
    throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  };
  const server = createSmtpIn({ host: '127.0.0.1', port: 0, domain: 'mesh.test' }, { isMember: bridge.isMember, deliver: bridge.deliver, ...(dns === 'instant' ? { resolver: notFound } : {}) });
  await server.start();
  const client = createTransport({ host: '127.0.0.1', port: server.address()!.port, secure: false, ignoreTLS: true, pool: true, maxConnections: 4 });
  const warmUp = 8; // connections opened and code paths compiled before the clock starts
  await Promise.all(Array.from({ length: warmUp }, (_, i) => client.sendMail({ from: 'bob@example.org', to: 'alice@rose.mesh.test', subject: `warm-up ${i}`, text: 'warm-up' })));
  const began = performance.now();
  await Promise.all(
    Array.from({ length: messages }, (_, i) =>
      client.sendMail({ from: 'bob@example.org', to: 'alice@rose.mesh.test', subject: `message ${i}`, text: 'A short internet mail. '.repeat(20) }),
    ),
  );
  const s = (performance.now() - began) / 1000;
  const stored = (await node.store.byRecipient(keyId(alice.agreementKey))).length;
  if (stored !== messages + warmUp) throw new Error(`only ${stored} of ${messages + warmUp} mails were sealed to alice@rose`);
  console.log(`SMTP in, ${dns === 'instant' ? 'DNS instant ' : 'system DNS  '}      ${(messages / s).toFixed(0).padStart(8)} messages/s  (${messages} in ${s.toFixed(2)} s, 4 connections; SPF/DKIM/DMARC checked, sealed to alice@rose, stored)`);
  client.close();
  await server.stop();
}

interface ChildMemory {
  rss: number;
  heapUsed: number;
  peers: number;
}

/** The gateway side of benchPeers, in its own process so its memory is its own. */
async function peersGatewayChild(): Promise<void> {
  const many = { maxConnectionsPerHost: 1000, connectionsPerHostPerSecond: 1000, maxInboundConnections: 1000, maxConnections: 1000 };
  const gateway = await createLibp2pLink({ keySeed: new Uint8Array(randomBytes(32)), listen: ['/ip4/127.0.0.1/tcp/0'], limits: many }, { clock: systemClock });
  await gateway.start();
  const memory = (): ChildMemory => {
    globalThis.gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, peers: gateway.gatewayStats().peers.filter((p) => p.sending).length };
  };
  process.on('message', (msg: string) => {
    if (msg === 'memory') process.send!({ memory: memory() });
    if (msg === 'stop') void gateway.stop().then(() => process.exit(0));
  });
  process.send!({ addr: gateway.addrs()[0]! });
}

async function benchPeers(count: number): Promise<void> {
  const child = fork(import.meta.filename, [], { env: { ...process.env, BENCH_ROLE: 'peers-gateway' }, execArgv: ['--expose-gc', '--import', './bin/node-compat.mjs', '--import', 'tsx'] });
  const next = <T>(key: string) => new Promise<T>((resolve) => child.once('message', (m: { [k: string]: T }) => resolve(m[key]!)));
  const addr = await next<string>('addr');
  const ask = async () => {
    const answer = next<ChildMemory>('memory');
    child.send('memory');
    return answer;
  };
  await new Promise((r) => setTimeout(r, 500));
  const before = await ask();
  const peers: Libp2pLink[] = [];
  for (let i = 0; i < count; i++) {
    const peer = await createLibp2pLink({ keySeed: new Uint8Array(randomBytes(32)), listen: [], peers: [addr] }, { clock: systemClock });
    await peer.start();
    peers.push(peer);
  }
  let after = await ask();
  while (after.peers < count) {
    await new Promise((r) => setTimeout(r, 100));
    after = await ask();
  }
  await new Promise((r) => setTimeout(r, 1000));
  after = await ask();
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(
    `${count} peers on one gateway    rss ${mib(before.rss)} → ${mib(after.rss)} MiB (+${mib(after.rss - before.rss)}, ${((after.rss - before.rss) / count / 1024).toFixed(0)} KiB/peer), heap ${mib(before.heapUsed)} → ${mib(after.heapUsed)} MiB (gateway process alone, ${after.peers} peers sending)`,
  );
  await Promise.all(peers.map((p) => p.stop()));
  child.send('stop');
  await new Promise((r) => child.once('exit', r));
}

if (process.env.BENCH_ROLE === 'peers-gateway') {
  await peersGatewayChild();
} else {
  const only = process.env.BENCH_ONLY;
  if (!only || only === 'sync') await benchSyncRate(Number(process.env.BENCH_RECORDS ?? 2000));
  if (!only || only === 'link') await benchLinkRate(20_000, 1000);
  if (!only || only === 'smtp') {
    if (process.env.BENCH_DNS !== 'system') await benchSmtp(Number(process.env.BENCH_MESSAGES ?? 300), 'instant');
    if (process.env.BENCH_DNS !== 'instant') await benchSmtp(Number(process.env.BENCH_MESSAGES ?? 300), 'system');
  }
  if (!only || only === 'peers') await benchPeers(Number(process.env.BENCH_PEERS ?? 100));
  process.exit(0);
}
