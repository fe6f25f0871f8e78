/**
 * Set reconciliation: short ids, id sets, the message codec, and sessions between two
 * reconcilers in memory. Properties (fast-check, seed printed, FC_SEED=<seed> replays): for
 * random sets and message budgets, the responder finds exactly the symmetric difference;
 * equal sets finish in two messages; random and mutated messages only ever throw MeshError
 * with a RECONCILE_* code, and a session's state stays within its bounds.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MeshError } from '../../mesh/errors.ts';
import {
  createIdSet,
  decodeReconcileMessage,
  encodeReconcileMessage,
  MAX_RANGES,
  Reconciler,
  shortId,
  type IdSet,
  type MutableIdSet,
  type ReconcileMessage,
} from '../../mesh/reconcile.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const id64 = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n });

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof MeshError && err.code === code);
}

function assertReconcileError(err: unknown, context: string): void {
  assert.ok(err instanceof MeshError, `${context}: not a MeshError: ${String(err)}`);
  assert.ok(err.code.startsWith('RECONCILE_'), `${context}: code ${err.code}`);
}

interface Outcome {
  theyLack: Set<bigint>;
  weLack: Set<bigint>;
  messages: number;
  bytes: number;
  done: boolean;
  /** Every message the session exchanged, for the fuzz test to mutate. */
  transcript: { toResponder: boolean; bytes: Uint8Array }[];
}

/** `a` opens (with `opening` syndromes), `b` responds, in memory, until the responder is done. */
function reconcile(a: MutableIdSet, b: MutableIdSet, maxMessageBytes: number, opening = 1): Outcome {
  const initiator = new Reconciler(a, { maxMessageBytes });
  const responder = new Reconciler(b, { maxMessageBytes });
  const outcome: Outcome = { theyLack: new Set(), weLack: new Set(), messages: 0, bytes: 0, done: false, transcript: [] };
  let toResponder = initiator.open(opening);
  for (let round = 0; round < 10_000 && !outcome.done && toResponder.length > 0; round++) {
    const toInitiator: Uint8Array[] = [];
    for (const message of toResponder) {
      assert.ok(message.length <= maxMessageBytes, `a message of ${message.length} bytes over ${maxMessageBytes}`);
      outcome.transcript.push({ toResponder: true, bytes: message });
      outcome.messages++;
      outcome.bytes += message.length;
      assert.ok(!outcome.done, 'DONE is the last message of a session');
      const result = responder.receive(message);
      for (const id of result.theyLack) outcome.theyLack.add(id);
      for (const id of result.weLack) outcome.weLack.add(id);
      toInitiator.push(...result.replies);
      outcome.done = result.done;
    }
    toResponder = [];
    for (const message of toInitiator) {
      assert.ok(message.length <= maxMessageBytes, `a message of ${message.length} bytes over ${maxMessageBytes}`);
      outcome.transcript.push({ toResponder: false, bytes: message });
      outcome.messages++;
      outcome.bytes += message.length;
      const result = initiator.receive(message);
      assert.deepEqual([result.theyLack, result.weLack], [[], []], 'the initiator learns nothing');
      toResponder.push(...result.replies);
    }
  }
  assert.ok(responder.rangeCount <= MAX_RANGES);
  return outcome;
}

/** A seeded 64-bit id source. */
function ids(seedValue: number): () => bigint {
  let s = seedValue >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return () => ((BigInt(next()) << 32n) | BigInt(next())) || 1n;
}

function makeSets(n: number, onlyA: number, onlyB: number, seedValue: number) {
  const next = ids(seedValue);
  const common = Array.from({ length: n }, next);
  const a = Array.from({ length: onlyA }, next);
  const b = Array.from({ length: onlyB }, next);
  return { a: createIdSet([...common, ...a]), b: createIdSet([...common, ...b]), onlyA: a, onlyB: b };
}

function assertFound(outcome: Outcome, onlyA: bigint[], onlyB: bigint[]): void {
  assert.ok(outcome.done, 'the session finished');
  assert.deepEqual(new Set(outcome.weLack), new Set(onlyA), 'weLack = what only the initiator holds');
  assert.deepEqual(new Set(outcome.theyLack), new Set(onlyB), 'theyLack = what only the responder holds');
}

describe('reconcile: short ids and id sets', () => {
  before(() => console.log(`      fast-check seed ${seed}`));

  it('takes the first 8 bytes of a record id, big-endian, and maps 0 to 1', () => {
    const id = new Uint8Array(32).map((_, i) => i + 1);
    assert.equal(shortId(id), 0x0102030405060708n);
    assert.equal(shortId(new Uint8Array(32)), 1n);
    assert.equal(shortId(id.subarray(8)), 0x090a0b0c0d0e0f10n);
    throwsCode(() => shortId(new Uint8Array(7)), 'RECONCILE_ID');
  });

  it('answers ranges like a filter over the set, and takes snapshots that later changes leave alone', () => {
    fc.assert(
      fc.property(fc.uniqueArray(id64, { maxLength: 200 }), fc.integer({ min: 0, max: 64 }), id64, (xs, depth, at) => {
        const set = createIdSet(xs);
        const prefix = depth === 0 ? 0n : at >> BigInt(64 - depth);
        const expected = xs.filter((x) => depth === 0 || x >> BigInt(64 - depth) === prefix).sort((p, q) => (p < q ? -1 : 1));
        assert.deepEqual([...set.inRange(depth, prefix)], expected);
        const before = set.sorted();
        const copy = [...before];
        set.add(at);
        if (xs.length > 0) set.delete(xs[0]!);
        assert.deepEqual([...before], copy);
        assert.equal(set.has(at), true);
      }),
      { seed, numRuns: 150 },
    );
    throwsCode(() => createIdSet([0n]), 'RECONCILE_ID');
    throwsCode(() => createIdSet().add(1n << 64n), 'RECONCILE_ID');
  });
});

describe('reconcile: sketches kept by the id set', () => {
  /** The same set seen through the plain IdSet interface: the reconciler computes every sketch itself. */
  function plain(set: MutableIdSet): IdSet {
    return { get size() { return set.size; }, has: (id) => set.has(id), inRange: (depth, prefix) => set.inRange(depth, prefix) };
  }

  /**
   * A session where both sets change between messages (the store keeps changing while a
   * session runs), once with the sets' cached sketches and once computing from snapshots:
   * the transcripts and findings must be identical byte for byte.
   */
  function changingSession(n: number, d: number, churn: number, maxMessageBytes: number, seedValue: number, plainSets: boolean) {
    const sets = makeSets(n, d, d >> 1, seedValue);
    const next = ids(seedValue + 1000);
    const initiator = new Reconciler(plainSets ? plain(sets.a) : sets.a, { maxMessageBytes });
    const responder = new Reconciler(plainSets ? plain(sets.b) : sets.b, { maxMessageBytes });
    const members = { a: [...sets.a.sorted()], b: [...sets.b.sorted()] };
    const change = (round: number) => {
      for (let k = 0; k < churn; k++) {
        const target = (round + k) % 2 === 0 ? 'a' : 'b';
        const set = sets[target];
        const list = members[target];
        if (k % 3 === 2 && list.length > 0) {
          const at = (round * 31 + k * 7) % list.length;
          set.delete(list[at]!);
          list[at] = list[list.length - 1]!;
          list.pop();
        } else {
          const id = next();
          set.add(id);
          list.push(id);
        }
      }
    };
    const transcript: string[] = [];
    const found: string[] = [];
    let toResponder = initiator.open(3);
    let done = false;
    for (let round = 0; round < 1000 && !done && toResponder.length > 0; round++) {
      const toInitiator: Uint8Array[] = [];
      for (const message of toResponder) {
        transcript.push(Buffer.from(message).toString('hex'));
        const result = responder.receive(message);
        found.push(...result.theyLack.map((x) => `+${x}`), ...result.weLack.map((x) => `-${x}`));
        toInitiator.push(...result.replies);
        done = result.done;
        change(round);
      }
      toResponder = [];
      for (const message of toInitiator) {
        transcript.push(Buffer.from(message).toString('hex'));
        toResponder.push(...initiator.receive(message).replies);
        change(round + 1);
      }
    }
    return { transcript, found, done };
  }

  it('gives the same bytes as sketches computed from the snapshot, while both sets change during the session', function () {
    this.timeout(60_000);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 150 }), fc.integer({ min: 0, max: 40 }), fc.constantFrom(64, 200, 1100), fc.integer(), (n, d, churn, bytes, s) => {
        const cached = changingSession(n, d, churn, bytes, s, false);
        const computed = changingSession(n, d, churn, bytes, s, true);
        assert.deepEqual(cached, computed);
        assert.ok(cached.done);
      }),
      { seed, numRuns: 30 },
    );
  });

  it('gives the same bytes when the set forgets the changes a session needs (more changes than it logs)', function () {
    this.timeout(60_000);
    for (const churn of [700, 3000]) {
      const cached = changingSession(2000, 120, churn, 200, churn, false);
      const computed = changingSession(2000, 120, churn, 200, churn, true);
      assert.deepEqual(cached, computed);
    }
  });

  it('gives the same bytes from the bucket sketches of a large set (≥ 4096 ids), changing or not', function () {
    this.timeout(60_000);
    for (const [n, d, churn] of [
      [5000, 0, 0],
      [5000, 40, 0],
      [6000, 300, 7],
      [9000, 90, 2000],
    ] as const) {
      const cached = changingSession(n, d, churn, 200, n + d, false);
      const computed = changingSession(n, d, churn, 200, n + d, true);
      assert.deepEqual(cached, computed, `n ${n}, d ${d}, churn ${churn}`);
      assert.ok(cached.done);
    }
  });

  it('keeps snapshots and sketches right across many sessions of a growing set', () => {
    const next = ids(77);
    const a = createIdSet(Array.from({ length: 4500 }, next));
    const b = createIdSet(a.sorted());
    for (let session = 0; session < 30; session++) {
      const onlyA = Array.from({ length: session % 7 }, next);
      const onlyB = Array.from({ length: session % 5 }, next);
      for (const x of onlyA) a.add(x);
      for (const x of onlyB) b.add(x);
      const outcome = reconcile(a, b, 200, 4);
      assertFound(outcome, onlyA, onlyB);
      for (const x of onlyA) b.add(x);
      for (const x of onlyB) a.add(x);
      if (session % 4 === 3) for (const x of [...a.sorted()].slice(0, 10)) (a.delete(x), b.delete(x));
      assert.deepEqual([...a.sorted()], [...createIdSet(a.inRange(0, 0n)).sorted()]);
      assert.deepEqual([...a.sorted()], [...b.sorted()]);
    }
  });
});

describe('reconcile: messages', () => {
  const examples: ReconcileMessage[] = [
    { type: 'done' },
    { type: 'open', entries: [{ depth: 0, prefix: 0n, from: 0, count: 10_000, checksum: 0xdeadbeef, syndromes: new Uint32Array([1, 2]) }] },
    {
      type: 'sketch',
      entries: [
        { depth: 3, prefix: 5n, from: 0, count: 0, checksum: 0, syndromes: new Uint32Array(0) },
        { depth: 64, prefix: (1n << 64n) - 1n, from: 7, syndromes: new Uint32Array([0xffffffff, 0, 3, 4]) },
      ],
    },
    { type: 'request', entries: [{ depth: 9, prefix: 300n, from: 0, to: 5 }, { depth: 0, prefix: 0n, from: 1, to: 64 }] },
  ];

  it('round-trips every message type', () => {
    for (const message of examples) assert.deepEqual(decodeReconcileMessage(encodeReconcileMessage(message)), message);
    // The documented layout of DONE and of a request.
    assert.deepEqual([...encodeReconcileMessage({ type: 'done' })], [0x14]);
    assert.deepEqual([...encodeReconcileMessage({ type: 'request', entries: [{ depth: 9, prefix: 300n, from: 0, to: 5 }] })], [0x13, 9, 0x01, 0x2c, 0, 5]);
  });

  it('refuses malformed bytes with RECONCILE_MALFORMED or RECONCILE_VERSION', () => {
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x24])), 'RECONCILE_VERSION');
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x19])), 'RECONCILE_MALFORMED');
    throwsCode(() => decodeReconcileMessage(new Uint8Array([])), 'RECONCILE_MALFORMED');
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x14, 0])), 'RECONCILE_MALFORMED'); // trailing
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x13, 65, 0, 1])), 'RECONCILE_MALFORMED'); // depth > 64
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x13, 1, 0x80, 0, 1])), 'RECONCILE_MALFORMED'); // prefix ≥ 2^depth
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x13, 0, 5, 5])), 'RECONCILE_MALFORMED'); // from ≥ to
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x13])), 'RECONCILE_MALFORMED'); // no entries
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x13, 0, 0x80, 0x80])), 'RECONCILE_MALFORMED'); // bad varint
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x12, 0, 1, 3, 0, 0, 0, 0])), 'RECONCILE_MALFORMED'); // 3 syndromes promised, none given
    throwsCode(() => decodeReconcileMessage(new Uint8Array([0x11, ...new Uint8Array(16)])), 'RECONCILE_MALFORMED'); // opening with two entries
  });
});

describe('reconcile: sessions', () => {
  it('finds exactly the symmetric difference of random sets, within every message budget', function () {
    this.timeout(20_000);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 400 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 40 }),
        fc.constantFrom(40, 64, 200, 1100),
        fc.integer(),
        (n, onlyA, onlyB, budget, s) => {
          const sets = makeSets(n, onlyA, onlyB, s);
          assertFound(reconcile(sets.a, sets.b, budget), sets.onlyA, sets.onlyB);
        },
      ),
      { seed, numRuns: 50 },
    );
  });

  it('finds a difference of hundreds, one-sided and split, through probes and splits', function () {
    this.timeout(20_000);
    for (const [onlyA, onlyB] of [
      [300, 0],
      [0, 250],
      [120, 140],
    ] as const) {
      const sets = makeSets(3000, onlyA, onlyB, onlyA * 7 + onlyB);
      assertFound(reconcile(sets.a, sets.b, 200), sets.onlyA, sets.onlyB);
    }
  });

  it('ends in two messages (opening and DONE) when the sets are equal, and costs little for one difference', () => {
    const sets = makeSets(5000, 0, 0, 1);
    const equal = reconcile(sets.a, sets.b, 200);
    assert.equal(equal.messages, 2);
    assert.ok(equal.bytes <= 24, `${equal.bytes} bytes`);
    assert.equal(equal.theyLack.size + equal.weLack.size, 0);
    const one = makeSets(5000, 0, 1, 2);
    const outcome = reconcile(one.a, one.b, 200);
    assertFound(outcome, one.onlyA, one.onlyB);
    assert.equal(outcome.messages, 2);
  });

  it('settles a difference of up to c in one opening of c syndromes (no round trips), and grows beyond it as usual', () => {
    for (const [onlyA, onlyB] of [[0, 12], [12, 0], [7, 5], [1, 0]] as const) {
      const sets = makeSets(3000, onlyA, onlyB, 40 + onlyA);
      const outcome = reconcile(sets.a, sets.b, 235, 12);
      assertFound(outcome, sets.onlyA, sets.onlyB);
      assert.equal(outcome.messages, 2, `${onlyA}/${onlyB}: opening and DONE`);
      assert.ok(outcome.transcript[0]!.bytes.length <= 1 + 1 + 1 + 3 + 4 + 1 + 8 * 12, `opening of ${outcome.transcript[0]!.bytes.length} bytes`);
    }
    const big = makeSets(3000, 20, 20, 77);
    const outcome = reconcile(big.a, big.b, 235, 12);
    assertFound(outcome, big.onlyA, big.onlyB);
    assert.ok(outcome.messages > 2);
    // An opening never outgrows one message, whatever is asked.
    const initiator = new Reconciler(big.a, { maxMessageBytes: 60 });
    assert.ok(initiator.open(64)[0]!.length <= 60);
  });

  it('handles empty sets on either side', () => {
    for (const [onlyA, onlyB] of [
      [0, 0],
      [5, 0],
      [0, 5],
    ] as const) {
      const sets = makeSets(0, onlyA, onlyB, 9);
      assertFound(reconcile(sets.a, sets.b, 200), sets.onlyA, sets.onlyB);
    }
  });

  it('checks its options and its state', () => {
    const set = createIdSet([1n]);
    throwsCode(() => new Reconciler(set, { maxMessageBytes: 10 }), 'RECONCILE_OPTIONS');
    throwsCode(() => new Reconciler(set, { maxMessageBytes: 200, maxDecodeCapacity: 1000 }), 'RECONCILE_OPTIONS');
    throwsCode(() => new Reconciler(set, { maxMessageBytes: 200, maxSessionBytes: 100 }), 'RECONCILE_OPTIONS');
    const opener = new Reconciler(set, { maxMessageBytes: 200 });
    const [opening] = opener.open();
    throwsCode(() => opener.open(), 'RECONCILE_STATE');
    throwsCode(() => opener.receive(opening!), 'RECONCILE_UNEXPECTED');
    const responder = new Reconciler(set, { maxMessageBytes: 200 });
    throwsCode(() => responder.receive(encodeReconcileMessage({ type: 'request', entries: [{ depth: 0, prefix: 0n, from: 0, to: 2 }] })), 'RECONCILE_UNEXPECTED');
    assert.equal(responder.receive(opening!).done, true);
    throwsCode(() => responder.receive(opening!), 'RECONCILE_STATE');
  });

  it('refuses a peer that asks for too much: capacity and session bytes', () => {
    const set = createIdSet(Array.from({ length: 100 }, ids(3)));
    const opener = new Reconciler(set, { maxMessageBytes: 200, maxSessionBytes: 2000 });
    opener.open();
    const ask = (to: number) => encodeReconcileMessage({ type: 'request', entries: [{ depth: 0, prefix: 0n, from: 0, to }] });
    throwsCode(() => opener.receive(ask(65)), 'RECONCILE_CAPACITY');
    assert.throws(
      () => {
        for (let i = 0; i < 100; i++) opener.receive(ask(64));
      },
      (err: unknown) => err instanceof MeshError && err.code === 'RECONCILE_BUDGET',
    );
    assert.ok(opener.sessionBytes <= 2000 + 200);
  });

  it('refuses a peer that makes it recompute sketches again and again (work budget)', () => {
    const set = createIdSet(Array.from({ length: 20_000 }, ids(4)));
    const opener = new Reconciler(set, { maxMessageBytes: 1100, maxDecodeCapacity: 24, maxSessionBytes: 10_000_000 });
    opener.open();
    // Every range of depths 0..4: five times the set, more than the cache keeps, so each
    // round recomputes them; an honest responder never asks for a range twice.
    const entries = [];
    for (let depth = 0; depth <= 4; depth++) for (let prefix = 0n; prefix < 1n << BigInt(depth); prefix++) entries.push({ depth, prefix, from: 0, to: 24 });
    const request = encodeReconcileMessage({ type: 'request', entries });
    assert.throws(
      () => {
        for (let round = 0; round < 10; round++) opener.receive(request);
      },
      (err: unknown) => err instanceof MeshError && err.code === 'RECONCILE_BUDGET',
    );
  });
});

describe('reconcile: hostile bytes', () => {
  it('random and mutated messages only ever throw MeshError RECONCILE_*, and sessions stay bounded', function () {
    this.timeout(30_000);
    const sets = makeSets(300, 20, 20, 77);
    const { transcript } = reconcile(sets.a, sets.b, 200);
    const toResponder = transcript.filter((m) => m.toResponder).map((m) => m.bytes);
    const toInitiator = transcript.filter((m) => !m.toResponder).map((m) => m.bytes);
    const maxSessionBytes = 20_000;

    /** Replays the honest prefix of a session, then feeds `hostile`; checks errors and bounds. */
    const feed = (toResponderSide: boolean, prefix: number, hostile: Uint8Array[]) => {
      const initiator = new Reconciler(sets.a, { maxMessageBytes: 200, maxSessionBytes });
      const responder = new Reconciler(sets.b, { maxMessageBytes: 200, maxSessionBytes });
      initiator.open();
      const target = toResponderSide ? responder : initiator;
      try {
        if (toResponderSide) for (const m of toResponder.slice(0, prefix)) responder.receive(m);
        else for (const m of toInitiator.slice(0, prefix)) initiator.receive(m);
      } catch {
        // The honest prefix may not replay on its own (a reply depends on earlier replies).
      }
      for (const m of hostile) {
        try {
          const result = target.receive(m);
          for (const reply of result.replies) assert.ok(reply.length <= 200);
        } catch (err) {
          assertReconcileError(err, 'hostile message');
        }
        assert.ok(target.sessionBytes <= maxSessionBytes + 200, 'session bytes bounded');
        assert.ok(target.rangeCount <= MAX_RANGES, 'ranges bounded');
      }
    };

    const mutation = (messages: Uint8Array[]) =>
      fc.tuple(fc.integer({ min: 0, max: messages.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.nat(255), fc.constantFrom('flip', 'set', 'cut', 'insert')), { minLength: 1, maxLength: 4 })).map(([i, edits]) => {
        let bytes = Uint8Array.from(messages[i]!);
        for (const [at, value, kind] of edits) {
          const p = bytes.length === 0 ? 0 : at % bytes.length;
          if (kind === 'flip' && bytes.length > 0) bytes[p]! ^= 1 << (value % 8);
          else if (kind === 'set' && bytes.length > 0) bytes[p] = value;
          else if (kind === 'cut') bytes = bytes.slice(0, p);
          else bytes = Uint8Array.from([...bytes.slice(0, p), value, ...bytes.slice(p)]);
        }
        return { index: i, bytes };
      });

    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.uint8Array({ maxLength: 260 }), { minLength: 1, maxLength: 5 }), (side, junk) => feed(side, 0, junk)),
      { seed, numRuns: 150 },
    );
    fc.assert(
      fc.property(mutation(toResponder), ({ index, bytes }) => feed(true, index, [bytes, ...toResponder.slice(index + 1)])),
      { seed, numRuns: 150 },
    );
    fc.assert(
      fc.property(mutation(toInitiator), ({ index, bytes }) => feed(false, index, [bytes, ...toInitiator.slice(index + 1)])),
      { seed, numRuns: 150 },
    );
  });
});
