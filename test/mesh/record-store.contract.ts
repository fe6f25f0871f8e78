/**
 * The record store's contract suite: every database the store runs on (`MemoryDatabase`,
 * LevelDB on disk and memory-level through `LevelDatabase`) runs these same tests through
 * `describeRecordStoreContract`. Covers reads by
 * every index, dedupe, forks, quotas, expiry, serialized writes, node-local state, durable
 * (`sync`) writes, persistence across reopen, corrupt data, and a seeded model-based property
 * test (FC_SEED=<seed> replays it).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toHex, utf8 } from '../../mesh/bytes.ts';
import { hasCode } from '../../mesh/errors.ts';
import { Identity, keyId } from '../../mesh/identity.ts';
import { createRecord, decodeRecord, isFork, RecordKind, type Record } from '../../mesh/record.ts';
import { RecordStore, type RecordStoreOptions } from '../../mesh/record-store.ts';
import { seal } from '../../mesh/seal.ts';
import type { StoreDatabase } from '../../mesh/store-database.ts';
import { seededRandom, shuffle } from '../helpers/random.ts';

/** How a contract run gets databases of one kind. */
export interface StoreHarness {
  /** A fresh, empty database, with a way to get at the same data again after it was closed. */
  create(): Promise<{ db: StoreDatabase; reopen(): Promise<StoreDatabase> }>;
  /** Remove every database this harness created. */
  cleanup(): Promise<void>;
}

const seed = Number(process.env.FC_SEED ?? 20260302);
const NOW = 1_790_000_000;
const FEED_A = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1]);
const FEED_B = Uint8Array.from([2, 2, 2, 2, 2, 2, 2, 2]);

interface Draft {
  feed?: Uint8Array;
  seq: number;
  time?: number;
  ttl?: number;
  payload?: Uint8Array;
  sealed?: boolean;
}

function makeRecord(author: Identity, d: Draft): Record {
  return createRecord(
    {
      kind: d.sealed ? RecordKind.Mail : RecordKind.DocumentUpdate,
      feed: d.feed ?? FEED_A,
      seq: d.seq,
      time: d.time ?? NOW,
      ttl: d.ttl ?? 0,
      sealed: d.sealed ?? false,
      payload: d.payload ?? Uint8Array.of(d.seq & 0xff),
    },
    author,
  );
}

async function rejectsCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => hasCode(err, code) && (err as Error).name === 'MeshError');
}

const hexIds = (records: Record[]) => records.map((r) => toHex(r.id));
const statuses = (results: { status: string }[]) => results.map((r) => r.status);

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export function describeRecordStoreContract(name: string, makeHarness: () => StoreHarness): void {
  describe(`mesh/record-store contract: ${name}`, () => {
    const random = seededRandom(seed);
    const alice = Identity.generate(random);
    const bob = Identity.generate(random);
    const carol = Identity.generate(random);
    let harness: StoreHarness;
    let current: { db: StoreDatabase; reopen(): Promise<StoreDatabase> };
    let store: RecordStore;

    const open = async (options?: RecordStoreOptions) => {
      current = await harness.create();
      store = await RecordStore.open(current.db, options);
      return store;
    };
    const reopen = async (options?: RecordStoreOptions) => {
      await store.close();
      store = await RecordStore.open(await current.reopen(), options);
      return store;
    };

    before(() => {
      harness = makeHarness();
    });
    afterEach(async () => {
      await store?.close();
    });
    after(async () => {
      await harness.cleanup();
    });

    it('stores records and reads them back by id', async () => {
      await open();
      const records = [0, 1, 2].map((seq) => makeRecord(alice, { seq }));
      assert.deepEqual(statuses(await store.put(records)), ['stored', 'stored', 'stored']);
      for (const r of records) {
        assert.equal(toHex((await store.get(r.id))!.bytes), toHex(r.bytes));
        assert.equal(await store.has(r.id), true);
      }
      const unknown = new Uint8Array(32).fill(9);
      assert.equal(await store.get(unknown), undefined);
      assert.equal(await store.has(unknown), false);
      assert.equal(store.count(), 3);
      const ids = (await collect(store.ids())).map(toHex);
      assert.deepEqual(ids, hexIds(records).sort());
      assert.deepEqual(hexIds(await collect(store.records())).sort(), ids);
      const bytes = records.reduce((n, r) => n + r.bytes.length, 0);
      assert.deepEqual(await store.stats(), { records: 3, bytes, authors: 1, flagged: 0, corrupt: 0 });
    });

    it('dedupes across batches and inside one batch, counting each record once', async () => {
      await open();
      const [r0, r1] = [makeRecord(alice, { seq: 0 }), makeRecord(alice, { seq: 1 })];
      assert.deepEqual(statuses(await store.put([r0, r0, r1, r0])), ['stored', 'duplicate', 'stored', 'duplicate']);
      assert.deepEqual(statuses(await store.put([r1, r0])), ['duplicate', 'duplicate']);
      const results = await store.put([r1]);
      assert.equal(toHex(results[0]!.id), toHex(r1.id));
      assert.equal(store.count(), 2);
      assert.equal((await store.stats()).bytes, r0.bytes.length + r1.bytes.length);
      assert.deepEqual(await store.put([]), []);
    });

    it('lists an author\'s feed in seq order, from any seq, and tracks the latest seq', async () => {
      await open();
      const records = Array.from({ length: 10 }, (_, seq) => makeRecord(alice, { seq }));
      await store.put(shuffle(records, random));
      await store.put([makeRecord(alice, { feed: FEED_B, seq: 0 }), makeRecord(bob, { seq: 3 })]);
      assert.deepEqual(hexIds(await store.byAuthor(alice.id, FEED_A)), hexIds(records));
      assert.deepEqual(hexIds(await store.byAuthor(alice.id, FEED_A, 7)), hexIds(records.slice(7)));
      assert.deepEqual(await store.byAuthor(alice.id, FEED_A, 10), []);
      assert.equal(await store.latestSeq(alice.id, FEED_A), 9);
      assert.equal(await store.latestSeq(alice.id, FEED_B), 0);
      assert.equal(await store.latestSeq(bob.id, FEED_A), 3);
      assert.equal(await store.latestSeq(bob.id, FEED_B), -1);
      assert.equal(await store.latestSeq(carol.id, FEED_A), -1);
    });

    it('lists every record of a document (feed) from all its authors, by time', async () => {
      await open();
      const a = makeRecord(alice, { seq: 0, time: NOW + 2 });
      const b = makeRecord(bob, { seq: 0, time: NOW + 1 });
      const other = makeRecord(carol, { feed: FEED_B, seq: 0 });
      await store.put([a, other, b]);
      assert.deepEqual(hexIds(await store.byFeed(FEED_A)), hexIds([b, a]));
      assert.deepEqual(hexIds(await store.byFeed(FEED_B)), hexIds([other]));
      assert.deepEqual(await store.byFeed(new Uint8Array(8)), []);
    });

    it('indexes sealed records by recipient key id and ignores malformed seals', async () => {
      await open();
      const toBobAndCarol = makeRecord(alice, {
        seq: 0,
        sealed: true,
        payload: seal(Uint8Array.of(1, 2, 3), [bob.agreementKey, carol.agreementKey], alice.id, random),
      });
      const toCarol = makeRecord(bob, { seq: 0, time: NOW + 5, sealed: true, payload: seal(Uint8Array.of(4), [carol.agreementKey], bob.id, random) });
      const malformed = makeRecord(alice, { seq: 1, sealed: true, payload: Uint8Array.of(1, 2, 3) });
      const plain = makeRecord(alice, { seq: 2, payload: seal(Uint8Array.of(5), [bob.agreementKey], alice.id, random) });
      assert.deepEqual(statuses(await store.put([toBobAndCarol, toCarol, malformed, plain])), ['stored', 'stored', 'stored', 'stored']);
      assert.deepEqual(hexIds(await store.byRecipient(keyId(bob.agreementKey))), hexIds([toBobAndCarol]));
      assert.deepEqual(hexIds(await store.byRecipient(keyId(carol.agreementKey))), hexIds([toBobAndCarol, toCarol]));
      assert.deepEqual(await store.byRecipient(keyId(alice.agreementKey)), []);
      assert.equal(await store.has(malformed.id), true);
    });

    it('keeps fork evidence apart, flags the author and returns fork', async () => {
      await open();
      const original = makeRecord(alice, { seq: 4, payload: Uint8Array.of(1) });
      const fork = makeRecord(alice, { seq: 4, payload: Uint8Array.of(2) });
      const third = makeRecord(alice, { seq: 4, payload: Uint8Array.of(3) });
      assert.ok(isFork(original, fork));
      assert.deepEqual(statuses(await store.put([original])), ['stored']);
      assert.equal(await store.isFlagged(alice.id), false);
      assert.deepEqual(statuses(await store.put([fork])), ['fork']);
      assert.equal(await store.isFlagged(alice.id), true);
      assert.equal(await store.isFlagged(bob.id), false);
      // Only the first record at the position is a normal, indexed record.
      assert.equal(await store.has(fork.id), false);
      assert.deepEqual(hexIds(await store.byAuthor(alice.id, FEED_A)), hexIds([original]));
      assert.deepEqual(hexIds(await store.byFeed(FEED_A)), hexIds([original]));
      assert.equal(store.count(), 1);
      const evidence = await store.forks();
      assert.equal(evidence.length, 1);
      assert.equal(toHex(evidence[0]!.author), toHex(alice.id));
      assert.equal(toHex(evidence[0]!.feed), toHex(FEED_A));
      assert.equal(evidence[0]!.seq, 4);
      assert.deepEqual(hexIds(evidence[0]!.records), hexIds([original, fork]).sort());
      // Offering the fork again, or a third version, changes nothing but still says fork.
      assert.deepEqual(statuses(await store.put([fork, third])), ['fork', 'fork']);
      assert.equal((await store.forks()).length, 1);
      assert.equal((await store.forks(alice.id))[0]!.records.length, 2);
      assert.deepEqual(await store.forks(bob.id), []);
      assert.deepEqual(await store.stats(), { records: 1, bytes: original.bytes.length, authors: 1, flagged: 1, corrupt: 0 });
    });

    it('detects a fork inside one batch', async () => {
      await open();
      const a = makeRecord(bob, { seq: 0, payload: Uint8Array.of(1) });
      const b = makeRecord(bob, { seq: 0, payload: Uint8Array.of(2) });
      assert.deepEqual(statuses(await store.put([a, b])), ['stored', 'fork']);
      assert.equal(await store.isFlagged(bob.id), true);
      assert.equal((await store.forks())[0]!.records.length, 2);
      assert.equal((await store.stats()).flagged, 1);
    });

    it('treats the same signed content with other signature bytes as a duplicate, not a fork', async () => {
      await open();
      const r = makeRecord(alice, { seq: 0 });
      const bytes = Uint8Array.from(r.bytes);
      bytes[bytes.length - 1]! ^= 1; // the store does not verify: that is the caller's job
      const resigned = decodeRecord(bytes);
      assert.deepEqual(statuses(await store.put([r, resigned])), ['stored', 'duplicate']);
      assert.equal(await store.isFlagged(alice.id), false);
    });

    it('refuses records over the per-author record and byte quotas', async () => {
      await open({ maxRecordsPerAuthor: 3, maxBytesPerAuthor: 1000 });
      const many = Array.from({ length: 5 }, (_, seq) => makeRecord(alice, { seq }));
      assert.deepEqual(statuses(await store.put(many)), ['stored', 'stored', 'stored', 'quota', 'quota']);
      assert.equal(await store.has(many[3]!.id), false);
      assert.equal(await store.latestSeq(alice.id, FEED_A), 2);
      assert.deepEqual(statuses(await store.put([makeRecord(bob, { seq: 0 })])), ['stored']);
      // Each record is its payload plus ~90 bytes of envelope: 890 + 190 > 1000 >= 890 + 91.
      const big = makeRecord(carol, { seq: 0, payload: new Uint8Array(800) });
      const tooBig = makeRecord(carol, { seq: 1, payload: new Uint8Array(100) });
      const small = makeRecord(carol, { seq: 2, payload: new Uint8Array(1) });
      assert.deepEqual(statuses(await store.put([big, tooBig, small])), ['stored', 'quota', 'stored']);
      assert.equal(store.count(), 6);
    });

    it('lets quotaFor lift the limits for some authors and set others', async () => {
      const quotaFor = (author: Uint8Array) => (toHex(author) === toHex(alice.id) ? null : toHex(author) === toHex(bob.id) ? { records: 1, bytes: 10_000 } : undefined);
      await open({ maxRecordsPerAuthor: 2, quotaFor });
      const batch = (who: Identity) => Array.from({ length: 4 }, (_, seq) => makeRecord(who, { seq }));
      assert.deepEqual(statuses(await store.put(batch(alice))), ['stored', 'stored', 'stored', 'stored']);
      assert.deepEqual(statuses(await store.put(batch(bob))), ['stored', 'quota', 'quota', 'quota']);
      assert.deepEqual(statuses(await store.put(batch(carol))), ['stored', 'stored', 'quota', 'quota']);
    });

    it('refuses expired records; expire() removes them, their index entries and their quota use', async () => {
      await open({ maxRecordsPerAuthor: 3 });
      const sealedPayload = seal(Uint8Array.of(1), [bob.agreementKey], alice.id, random);
      const shortLived = makeRecord(alice, { seq: 0, ttl: 10, sealed: true, payload: sealedPayload });
      const longLived = makeRecord(alice, { seq: 1, ttl: 100 });
      const forever = makeRecord(alice, { seq: 2 });
      const dead = makeRecord(bob, { seq: 0, ttl: 5 });
      const results = await store.put([shortLived, longLived, forever, dead], { now: NOW + 5 });
      assert.deepEqual(statuses(results), ['stored', 'stored', 'stored', 'expired']);
      assert.equal(await store.has(dead.id), false);
      assert.deepEqual(statuses(await store.put([makeRecord(alice, { seq: 3 })])), ['quota']);

      assert.equal(await store.expire(NOW + 9), 0);
      assert.equal(await store.expire(NOW + 10), 1); // expires at time + ttl, inclusive
      assert.equal(await store.has(shortLived.id), false);
      assert.equal(await store.get(shortLived.id), undefined);
      assert.deepEqual(await store.byRecipient(keyId(bob.agreementKey)), []);
      assert.deepEqual(hexIds(await store.byAuthor(alice.id, FEED_A)), hexIds([longLived, forever]));
      assert.deepEqual(hexIds(await store.byFeed(FEED_A)).sort(), hexIds([longLived, forever]).sort());
      assert.deepEqual(await store.stats(), { records: 2, bytes: longLived.bytes.length + forever.bytes.length, authors: 1, flagged: 0, corrupt: 0 });
      // The freed quota is usable again; the feed head never goes back (no seq is reused).
      assert.deepEqual(statuses(await store.put([makeRecord(alice, { seq: 3 })])), ['stored']);
      assert.equal(await store.expire(NOW + 1_000_000), 1);
      assert.equal(await store.latestSeq(alice.id, FEED_A), 3);
      assert.deepEqual(hexIds(await store.byAuthor(alice.id, FEED_A)), hexIds([forever, makeRecord(alice, { seq: 3 })]));
      assert.equal(await store.expire(NOW + 1_000_000), 0);
    });

    it('removes the last record of an author on expiry and counts the author out', async () => {
      await open();
      const records = Array.from({ length: 300 }, (_, seq) => makeRecord(bob, { seq, ttl: 1 + (seq % 7) })); // > one expiry chunk
      await store.put(records, { now: NOW });
      assert.equal((await store.stats()).authors, 1);
      assert.equal(await store.expire(NOW + 7), 300);
      assert.deepEqual(await store.stats(), { records: 0, bytes: 0, authors: 0, flagged: 0, corrupt: 0 });
      assert.deepEqual(await collect(store.ids()), []);
    });

    it('serializes concurrent writes: each record is stored once and quotas hold', async () => {
      await open({ maxRecordsPerAuthor: 5 });
      const pool = Array.from({ length: 12 }, (_, seq) => makeRecord(carol, { seq }));
      const batches = Array.from({ length: 20 }, (_, i) => [pool[i % 12]!, pool[(i * 5) % 12]!, pool[(i * 7 + 3) % 12]!]);
      const results = (await Promise.all(batches.map((b) => store.put(b)))).flat();
      assert.equal(results.filter((r) => r.status === 'stored').length, 5);
      assert.equal(store.count(), 5);
      const stored = new Set(results.filter((r) => r.status === 'stored').map((r) => toHex(r.id)));
      assert.equal(stored.size, 5);
    });

    it('keeps node-local state apart from records', async () => {
      await open();
      assert.equal(await store.getLocal('mail-read/alice/1'), undefined);
      await store.putLocal('mail-read/alice/1', '1');
      await store.putLocal('cursor', 'é ✓', { sync: true });
      assert.equal(await store.getLocal('mail-read/alice/1'), '1');
      assert.equal(await store.getLocal('cursor'), 'é ✓');
      await store.deleteLocal('cursor');
      assert.equal(await store.getLocal('cursor'), undefined);
      assert.deepEqual(await collect(store.ids()), []);
      assert.equal(store.count(), 0);
    });

    it('passes sync to the database for durable writes, and writes even when nothing is new', async () => {
      current = await harness.create();
      const seen: boolean[] = [];
      const db = current.db;
      const write = db.write.bind(db);
      db.write = (changes, options) => {
        seen.push(options.sync);
        return write(changes, options);
      };
      store = await RecordStore.open(db);
      seen.length = 0;
      const r = makeRecord(alice, { seq: 0 });
      await store.put([r], { sync: true });
      await store.put([r], { sync: true });
      await store.put([makeRecord(alice, { seq: 1 })]);
      // A duplicate that need not be durable writes nothing.
      await store.put([r]);
      assert.deepEqual(seen, [true, true, false]);
    });

    it('leaves counters untouched when a batch fails to write, and keeps accepting writes', async () => {
      current = await harness.create();
      const db = current.db;
      const write = db.write.bind(db);
      let fail = false;
      db.write = (changes, options) => (fail ? Promise.reject(new Error('disk full')) : write(changes, options));
      store = await RecordStore.open(db, { maxRecordsPerAuthor: 1 });
      fail = true;
      const r = makeRecord(alice, { seq: 0 });
      await assert.rejects(store.put([r]), /disk full/);
      fail = false;
      assert.deepEqual(await store.stats(), { records: 0, bytes: 0, authors: 0, flagged: 0, corrupt: 0 });
      assert.deepEqual(statuses(await store.put([r])), ['stored']);
      assert.equal(store.count(), 1);
    });

    it('keeps records, indexes, counters, flags, forks and local state across reopen', async () => {
      const options = { maxRecordsPerAuthor: 4 };
      await open(options);
      const records = Array.from({ length: 4 }, (_, seq) => makeRecord(alice, { seq, ttl: seq === 0 ? 50 : 0 }));
      const mail = makeRecord(bob, { seq: 0, sealed: true, payload: seal(Uint8Array.of(9), [carol.agreementKey], bob.id, random) });
      const fork = makeRecord(bob, { seq: 0, sealed: false });
      await store.put([...records, mail, fork], { sync: true, now: NOW });
      await store.putLocal('k', 'v', { sync: true });
      const before = await store.stats();
      await reopen(options);
      assert.deepEqual(await store.stats(), before);
      assert.deepEqual(hexIds(await store.byAuthor(alice.id, FEED_A)), hexIds(records));
      assert.deepEqual(hexIds(await store.byRecipient(keyId(carol.agreementKey))), hexIds([mail]));
      assert.equal(await store.isFlagged(bob.id), true);
      assert.equal((await store.forks()).length, 1);
      assert.equal(await store.getLocal('k'), 'v');
      assert.equal(await store.latestSeq(alice.id, FEED_A), 3);
      // Quota use was persisted: alice is full until a record expires.
      assert.deepEqual(statuses(await store.put([makeRecord(alice, { seq: 4 })])), ['quota']);
      assert.equal(await store.expire(NOW + 50), 1);
      await reopen(options);
      assert.deepEqual(statuses(await store.put([makeRecord(alice, { seq: 4 })])), ['stored']);
      assert.equal(store.count(), 5);
    });

    it('skips a corrupt stored record in listings and counts it; get() throws STORE_CORRUPT', async () => {
      await open();
      const good = makeRecord(alice, { seq: 0 });
      const damaged = makeRecord(alice, { seq: 1 });
      await store.put([good, damaged]);
      // Damage the record's bytes in place, through the documented key layout (area !r!).
      await current.db.write([{ type: 'put', area: 'r', key: damaged.id, value: Uint8Array.of(1, 2, 3) }], { sync: false });
      assert.deepEqual(hexIds(await collect(store.records())), hexIds([good]));
      assert.deepEqual(hexIds(await store.byAuthor(alice.id, FEED_A)), hexIds([good]));
      assert.deepEqual(hexIds(await store.byFeed(FEED_A)), hexIds([good]));
      assert.equal((await store.stats()).corrupt, 3);
      await rejectsCode(store.get(damaged.id), 'STORE_CORRUPT');
      // A put that needs the damaged record to decide refuses with the same code.
      await rejectsCode(store.put([makeRecord(alice, { seq: 1, payload: Uint8Array.of(7) })]), 'STORE_CORRUPT');
      assert.equal((await collect(store.ids())).length, 2);
    });

    it('refuses a store written in a newer format', async () => {
      current = await harness.create();
      await current.db.open();
      await current.db.write([{ type: 'put', area: 'm', key: utf8('version'), value: Uint8Array.of(2) }], { sync: false });
      await rejectsCode(RecordStore.open(current.db), 'STORE_VERSION');
      // The store closed the database it could not use.
      await assert.rejects(current.db.get('m', utf8('version')));
    });

    it('refuses use after close with STORE_CLOSED, and bad input with STORE_INVALID', async () => {
      await open();
      await rejectsCode(store.put([{ id: new Uint8Array(3) } as unknown as Record]), 'STORE_INVALID');
      await rejectsCode(store.put('nope' as unknown as Record[]), 'STORE_INVALID');
      await rejectsCode(store.get(new Uint8Array(31)), 'STORE_INVALID');
      await rejectsCode(store.byAuthor(alice.id, FEED_A, -1), 'STORE_INVALID');
      await rejectsCode(store.byRecipient(new Uint8Array(32)), 'STORE_INVALID');
      await rejectsCode(store.expire(Number.NaN), 'STORE_INVALID');
      await rejectsCode(store.putLocal('', 'x'), 'STORE_INVALID');
      await assert.rejects(RecordStore.open(current.db, { maxRecordsPerAuthor: -1 }), (err) => hasCode(err, 'STORE_INVALID'));
      // Writes queued before close() still complete; close() waits for them.
      const queued = store.put([makeRecord(alice, { seq: 0 }), makeRecord(alice, { seq: 0, payload: Uint8Array.of(9) })]);
      const expiring = store.expire(NOW);
      await store.close();
      assert.deepEqual(statuses(await queued), ['stored', 'fork']);
      assert.equal(await expiring, 0);
      await store.close();
      await rejectsCode(store.put([makeRecord(alice, { seq: 0 })]), 'STORE_CLOSED');
      await rejectsCode(store.get(new Uint8Array(32)), 'STORE_CLOSED');
      await rejectsCode(store.stats(), 'STORE_CLOSED');
      await rejectsCode(store.getLocal('k'), 'STORE_CLOSED');
      assert.throws(() => store.count(), (err) => hasCode(err, 'STORE_CLOSED'));
      await assert.rejects(collect(store.ids()), (err) => hasCode(err, 'STORE_CLOSED'));
    });

    describe('against a model (property, seeded)', () => {
      // A pool with duplicates, forks (two payloads per position), short and long expiries.
      const authors = [alice, bob, carol];
      const pool: Record[] = [];
      for (const [a, author] of authors.entries()) {
        for (const feed of [FEED_A, FEED_B]) {
          for (let seq = 0; seq < 4; seq++) {
            for (const variant of [0, 1]) {
              pool.push(makeRecord(author, { feed, seq, ttl: (seq + a) % 3 === 0 ? 0 : 20 * (seq + 1), payload: Uint8Array.of(variant, seq) }));
            }
          }
        }
      }
      const step = fc.oneof(
        fc.record({ put: fc.array(fc.nat(pool.length - 1), { minLength: 1, maxLength: 8 }), advance: fc.nat(30) }),
        fc.record({ expire: fc.constant(true), advance: fc.nat(30) }),
      );

      it('agrees with a plain model on statuses, counters and listings', async () => {
        const LIMIT = 3;
        await fc.assert(
          fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
            await store?.close();
            await open({ maxRecordsPerAuthor: LIMIT });
            const stored = new Map<string, Record>();
            const flagged = new Set<string>();
            const posOf = (r: Record) => `${toHex(r.author)}/${toHex(r.feed)}/${r.seq}`;
            const countOf = (author: string) => [...stored.values()].filter((r) => toHex(r.author) === author).length;
            let now = NOW;
            for (const s of steps) {
              now += s.advance;
              if ('expire' in s) {
                let expected = 0;
                for (const [id, r] of stored) if (r.expires !== null && r.expires <= now) (stored.delete(id), expected++);
                assert.equal(await store.expire(now), expected);
                continue;
              }
              const batch = s.put.map((i) => pool[i]!);
              const seen = new Set<string>();
              const expected = batch.map((r) => {
                const id = toHex(r.id);
                if (seen.has(id)) return 'duplicate';
                seen.add(id);
                if (r.expires !== null && r.expires <= now) return 'expired';
                if (stored.has(id)) return 'duplicate';
                const holder = [...stored.values()].find((h) => posOf(h) === posOf(r));
                if (holder) {
                  flagged.add(toHex(r.author));
                  return 'fork';
                }
                if (countOf(toHex(r.author)) >= LIMIT) return 'quota';
                stored.set(id, r);
                return 'stored';
              });
              assert.deepEqual(statuses(await store.put(batch, { now })), expected);
            }
            const all = [...stored.values()];
            const authorsLeft = new Set(all.map((r) => toHex(r.author)));
            assert.deepEqual(await store.stats(), {
              records: all.length,
              bytes: all.reduce((n, r) => n + r.bytes.length, 0),
              authors: authorsLeft.size,
              flagged: flagged.size,
              corrupt: 0,
            });
            assert.deepEqual((await collect(store.ids())).map(toHex), hexIds(all).sort());
            for (const author of authors) {
              for (const feed of [FEED_A, FEED_B]) {
                const expected = all.filter((r) => toHex(r.author) === toHex(author.id) && toHex(r.feed) === toHex(feed)).sort((a, b) => a.seq - b.seq);
                assert.deepEqual(hexIds(await store.byAuthor(author.id, feed)), hexIds(expected));
              }
              assert.equal(await store.isFlagged(author.id), flagged.has(toHex(author.id)));
            }
          }),
          { seed, numRuns: 25 },
        );
      });
    });
  });
}
