/**
 * The parts sync is built from: its message codec (layout, fuzz), the Trickle timer
 * (RFC 6206 behaviour on a virtual clock), the send queue (priorities, trust-weighted fair
 * shares, bounds), the heard filter, and vouching in the directory.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryLevel } from 'memory-level';
import { ManualClock } from '../../mesh/clock.ts';
import { MeshError } from '../../mesh/errors.ts';
import { HeardFilter } from '../../mesh/heard-filter.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { SendQueue } from '../../mesh/send-queue.ts';
import {
  decodeSyncMessage,
  encodeBeacon,
  encodeReconcile,
  encodeRecordMessage,
  encodeWant,
  EVERYONE,
  SyncType,
  verifyBeacon,
} from '../../mesh/sync-messages.ts';
import { nodeEd25519 } from '../../mesh/ed25519.ts';
import { REPAIR_NEIGHBOURS, repairShare } from '../../mesh/sync.ts';
import { Trickle } from '../../mesh/trickle.ts';
import { VirtualTime } from '../helpers/virtual-time.ts';
import { seededFloat, seededRandom } from '../helpers/random.ts';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);

describe('mesh/sync-messages', () => {
  const household = Identity.generate(seededRandom(1));

  it('round-trips every message type, with the documented header', () => {
    const beacon = encodeBeacon(household, { time: 1_800_000_000, records: 300, gateway: true });
    assert.equal(beacon[0], 0x11);
    assert.deepEqual(beacon.subarray(1, 9), household.id);
    assert.equal(beacon.length, 1 + 8 + 32 + 4 + 2 + 1 + 64);
    const b = decodeSyncMessage(beacon);
    assert.equal(b.type, SyncType.Beacon);
    if (b.type !== SyncType.Beacon) return;
    assert.equal(b.time, 1_800_000_000);
    assert.equal(b.records, 300);
    assert.equal(b.gateway, true);
    assert.equal(verifyBeacon(b, nodeEd25519), true);

    const r = decodeSyncMessage(encodeReconcile(household.id, EVERYONE, 7, true, Uint8Array.of(1, 2, 3), true));
    assert.deepEqual(r, { type: SyncType.Reconcile, sender: household.id, target: EVERYONE, session: 7, fromInitiator: true, opening: true, body: Uint8Array.of(1, 2, 3) });
    const answer = decodeSyncMessage(encodeReconcile(household.id, household.id, 8, false, Uint8Array.of(4)));
    assert.deepEqual(answer, { type: SyncType.Reconcile, sender: household.id, target: household.id, session: 8, fromInitiator: false, opening: false, body: Uint8Array.of(4) });
    const w = decodeSyncMessage(encodeWant(household.id, EVERYONE, [1n, 2n ** 64n - 1n]));
    assert.deepEqual(w, { type: SyncType.Want, sender: household.id, target: EVERYONE, ids: [1n, 2n ** 64n - 1n] });
    const rec = decodeSyncMessage(encodeRecordMessage(household.id, Uint8Array.of(9, 9)));
    assert.deepEqual(rec, { type: SyncType.Record, sender: household.id, record: Uint8Array.of(9, 9) });
  });

  it('refuses a beacon whose signature or key does not match', () => {
    const beacon = encodeBeacon(household, { time: 1_800_000_000, records: 1, gateway: false });
    const tampered = Uint8Array.from(beacon);
    tampered[43] ^= 1; // the time
    const t = decodeSyncMessage(tampered);
    assert.equal(t.type === SyncType.Beacon && verifyBeacon(t, nodeEd25519), false);
    const other = Identity.generate(seededRandom(2));
    const impostor = Uint8Array.from(beacon);
    impostor.set(other.id, 1); // claims another sender
    const i = decodeSyncMessage(impostor);
    assert.equal(i.type === SyncType.Beacon && verifyBeacon(i, nodeEd25519), false);
  });

  it('decodes any bytes to a message or a SYNC_* error, nothing else', () => {
    const valid = [
      encodeBeacon(household, { time: 1, records: 0, gateway: false }),
      encodeReconcile(household.id, household.id, 1, false, Uint8Array.of(5)),
      encodeWant(household.id, EVERYONE, [5n]),
      encodeRecordMessage(household.id, Uint8Array.of(1)),
    ];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat()).map(([v, pos, value, cut]) => {
            const m = Uint8Array.from(v);
            m[pos % m.length] = value;
            return m.subarray(0, Math.max(0, m.length - (cut % 4)));
          }),
        ),
        (bytes) => {
          try {
            decodeSyncMessage(bytes);
          } catch (err) {
            assert.ok(err instanceof MeshError && /^SYNC_(MALFORMED|VERSION|TYPE)$/.test(err.code), String(err));
          }
        },
      ),
      { seed, numRuns: 3000 },
    );
  });
});

describe('mesh/sync repair share', () => {
  it('is the full share up to REPAIR_NEIGHBOURS neighbours, and what a receiver hears of it stays bounded however dense', () => {
    const full = repairShare(0);
    assert.ok(full > 0 && full < 0.05);
    for (const n of [1, 2, 11, REPAIR_NEIGHBOURS]) assert.equal(repairShare(n), full);
    assert.equal(repairShare(2 * REPAIR_NEIGHBOURS), full / 2);
    // A receiver among n neighbours hears n of them repairing: never more than REPAIR_NEIGHBOURS full shares.
    for (const n of [17, 40, 69, 300]) {
      assert.ok(repairShare(n) < full);
      assert.ok(Math.abs(n * repairShare(n) - REPAIR_NEIGHBOURS * full) < 1e-12);
    }
  });
});

describe('mesh/trickle', () => {
  it('doubles its interval to Imax, fires once per interval, and resets on inconsistency', () => {
    const time = new VirtualTime(0);
    const fired: number[] = [];
    const trickle = new Trickle({ iminMs: 1000, imaxMs: 8000, k: 1 }, { timer: time, random: seededFloat(3) }, () => fired.push(time.now()));
    trickle.start();
    time.advanceBy(1000 + 2000 + 4000 + 8000 + 8000);
    assert.equal(fired.length, 5);
    // Each firing lies in the second half of its interval.
    const starts = [0, 1000, 3000, 7000, 15000];
    const lengths = [1000, 2000, 4000, 8000, 8000];
    fired.forEach((t, i) => assert.ok(t >= starts[i]! + lengths[i]! / 2 && t < starts[i]! + lengths[i]!, `firing ${i} at ${t}`));
    trickle.inconsistent();
    assert.equal(trickle.intervalMs, 1000);
    time.advanceBy(1000);
    assert.equal(fired.length, 6);
    trickle.stop();
    time.advanceBy(100_000);
    assert.equal(fired.length, 6);
  });

  it('stays quiet when k consistent messages were heard in the interval', () => {
    const time = new VirtualTime(0);
    let fired = 0;
    const trickle = new Trickle({ iminMs: 1000, imaxMs: 1000, k: 2 }, { timer: time, random: () => 0.99 }, () => fired++);
    trickle.start();
    trickle.consistent();
    trickle.consistent();
    time.advanceBy(1000);
    assert.equal(fired, 0);
    assert.equal(trickle.suppressions, 1);
    trickle.consistent(); // only one this time: below k
    time.advanceBy(1000);
    assert.equal(fired, 1);
  });
});

describe('mesh/send-queue', () => {
  const message = (n: number) => new Uint8Array(n);

  it('sends control first, then records by priority', () => {
    const q = new SendQueue({ weightOf: () => 1 });
    q.pushRecord({ shortId: 1n, message: message(10), priority: 3, household: 'a' });
    q.pushRecord({ shortId: 2n, message: message(11), priority: 0, household: 'a' });
    q.pushControl(message(1));
    assert.deepEqual([q.shift()?.length, q.shift()?.length, q.shift()?.length, q.shift()], [1, 11, 10, undefined]);
  });

  it('shares the link between households by trust, whatever one of them floods', () => {
    const weights: { [h: string]: number } = { flood: 0.25, friend: 4, neighbour: 1 };
    const sent: { [h: string]: number } = { flood: 0, friend: 0, neighbour: 0 };
    const owner = (shortId: bigint) => (shortId < 2000n ? 'flood' : shortId < 2100n ? 'friend' : 'neighbour');
    // The queue hands back the very arrays it was given, so they tell whose record went.
    const byMessage = new Map<Uint8Array, bigint>();
    const tracked = new SendQueue({ weightOf: (h) => weights[h]!, maxRecords: 10_000 });
    let id = 0n;
    for (const [h, n] of [['flood', 2000], ['friend', 100], ['neighbour', 100]] as const) {
      for (let i = 0; i < n; i++) {
        const m = message(200);
        byMessage.set(m, id);
        tracked.pushRecord({ shortId: id++, message: m, priority: 1, household: h });
      }
    }
    assert.equal(tracked.recordCount, 2200);
    for (let i = 0; i < 105; i++) sent[owner(byMessage.get(tracked.shift()!)!)]!++;
    // Shares 4 : 1 : 0.25 of 105 sends → 80 : 20 : 5.
    assert.ok(sent.friend! >= 75 && sent.neighbour! >= 18 && sent.flood! <= 8, JSON.stringify(sent));
  });

  it('stays within its bounds: a flood evicts its own records, not an urgent one', () => {
    const q = new SendQueue({ weightOf: () => 1, maxRecords: 50 });
    q.pushRecord({ shortId: 999n, message: message(100), priority: 0, household: 'mail' });
    for (let i = 0n; i < 500n; i++) q.pushRecord({ shortId: i, message: message(100), priority: 2, household: 'flood' });
    assert.equal(q.recordCount, 50);
    assert.ok(q.has(999n));
    assert.ok(q.dropped >= 451);
    assert.equal(q.remove(999n), true);
    assert.equal(q.has(999n), false);
  });
});

describe('mesh/heard-filter', () => {
  it('remembers what was heard for at least one generation, then forgets', () => {
    const clock = new ManualClock(0);
    const filter = new HeardFilter({ capacity: 100, maxAgeMs: 1000 }, clock);
    for (let i = 0n; i < 50n; i++) filter.add(i);
    for (let i = 0n; i < 50n; i++) assert.ok(filter.has(i));
    let falsePositives = 0;
    for (let i = 1000n; i < 2000n; i++) if (filter.has(i)) falsePositives++;
    assert.ok(falsePositives < 50, `false positives ${falsePositives}`);
    clock.advance(1000);
    assert.ok(filter.has(3n), 'the previous generation still answers');
    clock.advance(1000);
    assert.equal(filter.has(3n), false);
  });
});

describe('mesh/directory vouches', () => {
  it('gives households we vouch for, and their friends, more weight than strangers', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 1));
    const make = async (name: string, s: number) => {
      const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
      const node = new MeshNode({ householdName: name }, { household: Identity.generate(seededRandom(s)), store, clock });
      await node.start();
      return node;
    };
    const [rose, lilac, oak, stranger] = await Promise.all([make('rose', 1), make('lilac', 2), make('oak', 3), make('stranger', 4)]);
    const everything = async (node: MeshNode) => {
      const out: Uint8Array[] = [];
      for await (const r of node.store.records()) out.push(r.bytes);
      return out;
    };
    for (const other of [lilac, oak, stranger]) await rose.ingest(await everything(other));
    await lilac.ingest(await everything(oak));
    await rose.vouch('lilac');
    await lilac.vouch('oak');
    await rose.ingest(await everything(lilac));
    assert.equal(rose.trustOf(rose.household.id), 4);
    assert.equal(rose.trustOf(lilac.household.id), 4);
    assert.equal(rose.trustOf(oak.household.id), 2);
    assert.equal(rose.trustOf(stranger.household.id), 0.25);
    await assert.rejects(rose.vouch('nobody'), (e: MeshError) => e.code === 'HOUSEHOLD_UNKNOWN');
  });
});
