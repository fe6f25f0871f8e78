/**
 * Sync between real MeshNodes over in-memory links on virtual time: records travel hop by
 * hop, a node that was away catches up by reconciliation, one rebroadcast serves a clique,
 * hostile frames are dropped with a reason, and an idle network is quiet.
 */
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { toHex, utf8 } from '../../mesh/bytes.ts';
import { directoryFeed } from '../../mesh/directory.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { Priority, RecordKind, type Record } from '../../mesh/record.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { Sync, type SyncOptions } from '../../mesh/sync.ts';
import { decodeSyncMessage, encodeRecordMessage, SyncType } from '../../mesh/sync-messages.ts';
import { decodeFragment, encodeFragment } from '../../radio/fragmentation.ts';
import type { Link } from '../../radio/link.ts';
import { createMemoryMedium, type MemoryMedium } from '../../radio/memory-link.ts';
import { seededFloat, seededRandom } from '../helpers/random.ts';
import { VirtualTime } from '../helpers/virtual-time.ts';

interface Peer {
  name: string;
  node: MeshNode;
  sync: Sync;
  link: Link;
}

async function makePeer(name: string, medium: MemoryMedium, time: VirtualTime, seed: number, options: SyncOptions = {}, clockOffsetMs: () => number = () => 0): Promise<Peer> {
  const random = seededRandom(seed);
  const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
  // A household whose clock is wrong: its node and its sync read the same wrong time.
  const clock = { now: () => time.now() + clockOffsetMs() };
  const node = new MeshNode({ householdName: name }, { household: Identity.generate(random), store, clock, random });
  await node.start();
  const link = medium.attach(name, { mtu: 255, bitRate: 1_000 });
  const sync = new Sync({ node, clock, timer: time, random: seededFloat(seed) }, options);
  sync.addLink(link);
  await sync.start();
  await link.start();
  return { name, node, sync, link };
}

async function post(peer: Peer, text: string, priority = Priority.Normal): Promise<Record> {
  return peer.node.publish(peer.node.household, {
    kind: RecordKind.Message,
    feed: peer.node.household.id,
    priority,
    payload: utf8(text),
    ttl: 86_400,
  });

}

async function holds(peer: Peer, record: Record): Promise<boolean> {
  return peer.node.store.has(record.id);
}

function line(medium: MemoryMedium, names: string[]): void {
  for (let i = 1; i < names.length; i++) medium.connect(names[i - 1]!, names[i]!);
}

describe('mesh/sync over memory links (virtual time)', function () {
  this.timeout(60_000);

  it('carries a record hop by hop along a line whose ends cannot hear each other', async () => {
    const time = new VirtualTime();
    const medium = createMemoryMedium({ clock: time, hearsAll: false });
    const names = ['a', 'b', 'c', 'd'];
    line(medium, names);
    const peers: Peer[] = [];
    for (const [i, n] of names.entries()) peers.push(await makePeer(n, medium, time, 10 + i));
    await time.run(120_000); // beacons, directories
    const record = await post(peers[0]!, 'hello from a', Priority.Urgent);
    await time.run(120_000);
    for (const p of peers) assert.ok(await holds(p, record), `${p.name} holds it`);
    // a heard b pass it on (b, with two neighbours, always forwards): a knows b carries it; c did not reach a.
    assert.equal(peers[0]!.sync.carriers(record.id), 1);
    assert.equal(peers[3]!.sync.carriers(record.id), 1);
    // Every node knows every household (the directory spread as records).
    for (const p of peers) assert.equal(p.node.directory.householdCount, 4, p.name);
    assert.equal(peers[1]!.sync.stats().links[0]!.neighbours, 2);
    assert.equal(peers[0]!.sync.stats().links[0]!.neighbours, 1);
  });

  for (const shape of ['star', 'ring'] as const) {
    it(`spreads every household's records through a ${shape} of 6`, async () => {
      const time = new VirtualTime();
      const medium = createMemoryMedium({ clock: time, hearsAll: false });
      const names = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5'];
      if (shape === 'star') for (const n of names.slice(1)) medium.connect('h0', n);
      else for (let i = 0; i < names.length; i++) medium.connect(names[i]!, names[(i + 1) % names.length]!);
      const peers: Peer[] = [];
      for (const [i, n] of names.entries()) peers.push(await makePeer(n, medium, time, 60 + i));
      await time.run(120_000);
      const posted = await Promise.all(peers.map((p) => post(p, `news from ${p.name}`)));
      await time.run(600_000);
      for (const p of peers) for (const r of posted) assert.ok(await holds(p, r), `${p.name} holds ${toHex(r.id).slice(0, 8)}`);
    });
  }

  it('names a neighbour heard before its household was known as soon as the directory entry arrives', async () => {
    const time = new VirtualTime();
    const medium = createMemoryMedium({ clock: time, hearsAll: false });
    medium.connect('a', 'b');
    // b hears only a's beacons: nothing else a sends arrives, so a's directory entry never does.
    medium.setLoss((from, _to, frame) => {
      if (from !== 'a') return false;
      const fragment = decodeFragment(frame);
      return fragment.kind !== 'whole' || decodeSyncMessage(fragment.payload).type !== SyncType.Beacon;
    });
    const a = await makePeer('a', medium, time, 71);
    const b = await makePeer('b', medium, time, 72);
    await time.run(120_000);
    const heard = () => b.sync.neighbours(b.link).find((n) => n.id === toHex(a.node.household.id));
    assert.equal(heard()?.verified, true, 'b verified a by its beacon');
    assert.equal(heard()?.name, null, 'a is not in b\'s directory yet');
    // a falls silent; its directory entry reaches b another way (say, through a third household).
    medium.disconnect('a', 'b');
    const [entry] = await a.node.store.byFeed(directoryFeed(a.node.household.signingKey));
    await b.node.ingest([entry!.bytes]);
    assert.equal(heard()?.name, 'a');
  });

  it('tells whose clock is off: signed beacons refused for their time are reported, forged ones are not; a node whose clock is set back beacons at once, ending the report', async () => {
    const time = new VirtualTime();
    const medium = createMemoryMedium({ clock: time, hearsAll: false });
    medium.connect('a', 'b');
    medium.connect('a', 'c');
    let bAheadMs = 2 * 3_600_000;
    // A beacon a minute; a neighbour (and a report of its clock) is kept for 2.5 minutes.
    const quick: SyncOptions = { timing: { imaxMs: 60_000, beaconIntervalMs: 60_000, neighbourTimeoutMs: 150_000 } };
    const a = await makePeer('a', medium, time, 81, quick);
    const beacons: Uint8Array[] = [];
    const send = a.link.send.bind(a.link);
    a.link.send = (frame, options) => {
      const fragment = decodeFragment(frame);
      if (fragment.kind === 'whole' && decodeSyncMessage(fragment.payload).type === SyncType.Beacon) beacons.push(frame.slice());
      return send(frame, options);
    };
    const b = await makePeer('b', medium, time, 82, quick, () => bAheadMs);
    const c = await makePeer('c', medium, time, 83, quick, () => 2 * 3_600_000 + 60_000);
    await time.run(120_000);
    assert.equal(a.sync.neighbours(a.link).filter((n) => n.verified).length, 0, 'beacons beyond 15 min are refused');
    assert.deepEqual(a.sync.clockDisagreement(), { households: 2, offsetS: 7230 }, 'the median of 7,200 and 7,260 s');
    assert.deepEqual(b.sync.clockDisagreement(), { households: 1, offsetS: -7200 });
    assert.equal(c.sync.clockDisagreement()?.households, 1);
    // A beacon whose signature fails tells nothing about anyone's clock.
    assert.ok(beacons.length > 0);
    const forged = beacons.at(-1)!.slice();
    forged[forged.length - 1]! ^= 1;
    const forger = medium.attach('forger');
    const d = await makePeer('d', medium, time, 84, quick, () => 2 * 3_600_000); // hears only the forger
    medium.connect('forger', 'd');
    await forger.start();
    await forger.send(forged);
    await time.run(1_000);
    assert.equal(d.sync.clockDisagreement(), null, 'the forged beacon adds no report');
    await forger.send(beacons.at(-1)!);
    await time.run(1_000);
    assert.equal(d.sync.clockDisagreement()?.households, 1, 'the same beacon unaltered does');
    // b's clock is set right (two hours back): its next beacon ends a's report of it at once.
    bAheadMs = 0;
    await time.run(90_000);
    assert.equal(a.sync.neighbours(a.link).find((n) => n.id === toHex(b.node.household.id))?.verified, true);
    assert.deepEqual(a.sync.clockDisagreement(), { households: 1, offsetS: 7260 });
    // A report lasts as long as a neighbour is remembered: one no longer heard is forgotten.
    medium.disconnect('a', 'c');
    await time.run(160_000);
    assert.equal(a.sync.clockDisagreement(), null);
  });

  it('a node that was away catches up on everything by reconciliation', async () => {
    const time = new VirtualTime();
    const medium = createMemoryMedium({ clock: time, hearsAll: false });
    line(medium, ['a', 'b']);
    const a = await makePeer('a', medium, time, 21);
    const b = await makePeer('b', medium, time, 22);
    await time.run(60_000);
    medium.disconnect('a', 'b');
    const posted: Record[] = [];
    for (let i = 0; i < 60; i++) posted.push(await post(a, `while b was away ${i}`));
    await time.run(1_800_000); // half an hour: the posts are no longer "fresh", so only reconciliation can carry them
    assert.equal(await holds(b, posted[0]!), false);
    medium.connect('a', 'b');
    await time.run(3_600_000);
    for (const r of posted) assert.ok(await holds(b, r), `b holds ${toHex(r.id).slice(0, 8)}`);
  });

  it('in a clique one rebroadcast serves everyone (the rest stay quiet)', async () => {
    const time = new VirtualTime();
    const medium = createMemoryMedium({ clock: time, hearsAll: true });
    const peers: Peer[] = [];
    for (let i = 0; i < 6; i++) peers.push(await makePeer(`n${i}`, medium, time, 30 + i));
    await time.run(600_000);
    const before = peers.map((p) => p.sync.stats().links[0]!.records_pushed);
    const record = await post(peers[0]!, 'to the whole street', Priority.Urgent);
    await time.run(300_000);
    for (const p of peers) assert.ok(await holds(p, record), p.name);
    const pushes = peers.reduce((n, p, i) => n + p.sync.stats().links[0]!.records_pushed - before[i]!, 0);
    // The author's send, and at most a couple of forwards that raced: not one per node.
    assert.ok(pushes <= 3, `records pushed: ${pushes}`);
  });

  it('a difference too big for an opening costs one round trip, with the neighbour it names, not one per neighbour', async () => {
    const time = new VirtualTime();
    const medium = createMemoryMedium({ clock: time, hearsAll: false });
    const hub = await makePeer('hub', medium, time, 61);
    const leaves: Peer[] = [];
    for (let i = 0; i < 3; i++) leaves.push(await makePeer(`leaf${i}`, medium, time, 62 + i));
    for (const leaf of leaves) medium.connect('hub', leaf.name);
    await time.run(300_000);
    for (const leaf of leaves) medium.disconnect('hub', leaf.name);
    // The hub takes in 40 records while away: more than an opening's syndromes settle.
    const posted: Record[] = [];
    for (let i = 0; i < 40; i++) posted.push(await post(hub, `news ${i}`));
    await time.run(1_800_000);
    // Who answers the hub's openings with a round trip (a responder's REQUEST), per session.
    const answeredBy = new Map<number, Set<string>>();
    for (const leaf of leaves) {
      const send = leaf.link.send.bind(leaf.link);
      leaf.link.send = (frame, options) => {
        const fragment = decodeFragment(frame);
        if (fragment.kind === 'whole') {
          const message = decodeSyncMessage(fragment.payload);
          if (message.type === SyncType.Reconcile && !message.fromInitiator && toHex(message.target) === toHex(hub.node.household.id)) {
            answeredBy.set(message.session, (answeredBy.get(message.session) ?? new Set()).add(leaf.name));
          }
        }
        return send(frame, options);
      };
    }
    for (const leaf of leaves) medium.connect('hub', leaf.name);
    await time.run(3_600_000);
    for (const leaf of leaves) for (const r of posted) assert.ok(await holds(leaf, r), `${leaf.name} holds ${toHex(r.id).slice(0, 8)}`);
    assert.ok(answeredBy.size > 0, 'the hub opened sessions that needed round trips');
    for (const [session, who] of answeredBy) assert.equal(who.size, 1, `session ${session} answered by ${[...who].join(', ')}`);
  });

  it('drops garbage, forged and foreign frames with a counted reason', async () => {
    const time = new VirtualTime();
    const medium = createMemoryMedium({ clock: time, hearsAll: true });
    const a = await makePeer('a', medium, time, 41);
    const evil = medium.attach('evil', { mtu: 255 });
    await evil.start();
    await evil.send(Uint8Array.of(0x10, 0xff, 1, 2)); // whole message with an unknown version
    await evil.send(Uint8Array.of(0x77)); // not a fragment frame
    await evil.send(encodeFragment({ kind: 'whole', payload: Uint8Array.of(0x14, 1, 2) })); // a RECORD cut short in its header
    await time.run(1000);
    const dropped = a.sync.stats().links[0]!.dropped;
    assert.equal(dropped['sync-version'], 1, JSON.stringify(dropped));
    assert.equal(dropped['fragment-malformed'], 1, JSON.stringify(dropped));
    assert.equal(dropped['sync-malformed'], 1, JSON.stringify(dropped));
  });

  it('a copy of a record it holds is counted as a duplicate without being verified or stored again', async () => {
    const time = new VirtualTime();
    const medium = createMemoryMedium({ clock: time, hearsAll: true });
    const a = await makePeer('a', medium, time, 43);
    const b = await makePeer('b', medium, time, 44);
    const record = await post(b, 'hello');
    await time.run(600_000);
    assert.ok(await holds(a, record));
    const ingested: number[] = [];
    const ingest = a.node.ingest.bind(a.node);
    a.node.ingest = (frames, source) => {
      ingested.push(frames.length);
      return ingest(frames, source);
    };
    const dropped = () => a.sync.stats().links[0]!.dropped;
    const before = dropped()['record-duplicate'] ?? 0;
    const other = medium.attach('other', { mtu: 255 });
    await other.start();
    await other.send(encodeFragment({ kind: 'whole', payload: encodeRecordMessage(b.node.household.id, record.bytes) }));
    await time.run(1000);
    assert.equal(dropped()['record-duplicate'], before + 1);
    assert.deepEqual(ingested, [], 'a copy of a held record is not ingested again');
    const forged = record.bytes.slice();
    forged[forged.length - 1]! ^= 1; // another signature: other bytes, so another id
    await other.send(encodeFragment({ kind: 'whole', payload: encodeRecordMessage(b.node.household.id, forged) }));
    await time.run(1000);
    assert.deepEqual(ingested, [1], 'different bytes are checked');
    assert.equal(dropped()['record-record-bad-signature'], 1, JSON.stringify(dropped()));
  });

  it('an idle pair stays quiet: a few summaries and beacons per hour', async () => {
    const time = new VirtualTime();
    const medium = createMemoryMedium({ clock: time, hearsAll: true });
    const a = await makePeer('a', medium, time, 51);
    const b = await makePeer('b', medium, time, 52);
    await time.run(4 * 3_600_000); // settle to Imax
    const sent = () => a.link.stats().bytesOut + b.link.stats().bytesOut;
    const frames = () => a.link.stats().framesOut + b.link.stats().framesOut;
    const [bytes0, frames0] = [sent(), frames()];
    await time.run(3_600_000);
    const perHour = { bytes: sent() - bytes0, frames: frames() - frames0 };
    assert.ok(perHour.frames <= 6, JSON.stringify(perHour));
    assert.ok(perHour.bytes <= 600, JSON.stringify(perHour));
  });
});
