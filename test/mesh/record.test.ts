/**
 * Records: the version-1 known answers in test/vectors/record-v1.json (so any change to the
 * byte format shows up here), the invalid encodings with their error codes, and the rules of
 * verifyRecord: time, expiry, unknown authors, forged signatures, payload limit, forks.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ByteWriter, concatBytes, fromHex, toHex, utf8 } from '../../mesh/bytes.ts';
import { nobleEd25519, nodeEd25519 } from '../../mesh/ed25519.ts';
import { MeshError } from '../../mesh/errors.ts';
import { Identity } from '../../mesh/identity.ts';
import {
  createRecord,
  decodeRecord,
  envelopeLength,
  isFork,
  MAX_CLOCK_SKEW_S,
  MAX_PAYLOAD,
  Priority,
  RecordKind,
  RECORD_VERSION,
  recordId,
  verifyRecord,
  type RecordFields,
} from '../../mesh/record.ts';
import { seededRandom } from '../helpers/random.ts';

interface KnownAuthor {
  signingSeed: string;
  agreementSecret: string;
  signingKey: string;
}
interface ValidVector {
  name: string;
  author: string;
  fields: {
    kind: number;
    priority: number;
    sealed: boolean;
    fullKey: boolean;
    feed: string;
    seq: number;
    time: number;
    ttl: number;
    payload: string;
  };
  bytes: string;
  id: string;
  envelope: number;
}
interface InvalidVector {
  name: string;
  bytes: string;
  code: string;
  stage: 'decode' | 'verify';
  now?: number;
  keys?: string[];
}
const vectors = JSON.parse(readFileSync(new URL('../vectors/record-v1.json', import.meta.url), 'utf8')) as {
  authors: { [name: string]: KnownAuthor };
  valid: ValidVector[];
  invalid: InvalidVector[];
};

const SIGNING_DOMAIN = utf8('citizen-record-v1');
const identities = new Map(
  Object.entries(vectors.authors).map(([name, a]) => [name, new Identity(fromHex(a.signingSeed), fromHex(a.agreementSecret))]),
);
const alice = identities.get('alice')!;
const bob = identities.get('bob')!;

function isCode(code: string) {
  return (err: unknown) => err instanceof MeshError && err.code === code;
}
/** A resolver that knows these identities' keys by key id. */
function knows(...ids: Identity[]) {
  return (author: Uint8Array) => ids.filter((i) => toHex(i.id) === toHex(author)).map((i) => i.signingKey);
}
const noResolver = () => {
  throw new Error('the resolver must not be asked');
};

const T0 = 1_790_000_000;
const feed = fromHex('0102030405060708');
function fields(over: Partial<RecordFields> = {}): RecordFields {
  return { kind: RecordKind.Message, feed, seq: 1, time: T0, ttl: 3600, payload: utf8('hi'), ...over };
}

describe('mesh/record', () => {
  it('gives ids that are the SHA-256 of exactly the bytes given, however often they were seen', () => {
    const sha = (b: Uint8Array) => toHex(createHash('sha256').update(b).digest());
    const bytes = new Uint8Array(200).fill(1);
    const first = recordId(bytes);
    first.fill(0); // each caller owns its copy
    assert.equal(toHex(recordId(bytes)), sha(bytes));
    bytes[10] = 2; // same array, other bytes
    assert.equal(toHex(recordId(bytes)), sha(bytes));
    assert.equal(toHex(recordId(bytes.subarray(5, 60))), sha(bytes.subarray(5, 60)));
    const large = new Uint8Array(5000).fill(3);
    assert.equal(toHex(recordId(large)), sha(large));
    for (let i = 0; i < 5000; i++) recordId(new Uint8Array([i & 255, i >> 8]));
    assert.equal(toHex(recordId(bytes)), sha(bytes));
  });

  describe('version-1 known answers (test/vectors/record-v1.json)', () => {
    it('cover the shapes that matter', () => {
      assert.ok(vectors.valid.length >= 5);
      assert.ok(vectors.valid.some((v) => v.fields.fullKey));
      assert.ok(vectors.valid.some((v) => v.fields.sealed));
      assert.ok(vectors.valid.some((v) => v.fields.payload === ''));
      assert.ok(vectors.valid.some((v) => v.fields.seq === Number.MAX_SAFE_INTEGER));
    });

    for (const v of vectors.valid) {
      it(`encodes exactly: ${v.name}`, () => {
        const f = v.fields;
        for (const scheme of [nodeEd25519, nobleEd25519]) {
          const a = vectors.authors[v.author]!;
          const author = new Identity(fromHex(a.signingSeed), fromHex(a.agreementSecret), scheme);
          const record = createRecord(
            {
              kind: f.kind,
              priority: f.priority,
              sealed: f.sealed,
              fullKey: f.fullKey,
              feed: fromHex(f.feed),
              seq: f.seq,
              time: f.time,
              ttl: f.ttl,
              payload: fromHex(f.payload),
            },
            author,
          );
          assert.equal(toHex(record.bytes), v.bytes, scheme.name);
          assert.equal(toHex(record.id), v.id);
          assert.equal(envelopeLength(record), v.envelope);
        }
      });

      it(`decodes and verifies the saved bytes: ${v.name}`, () => {
        const bytes = fromHex(v.bytes);
        const r = decodeRecord(bytes);
        const f = v.fields;
        assert.equal(r.version, RECORD_VERSION);
        assert.equal(r.kind, f.kind);
        assert.equal(r.priority, f.priority);
        assert.equal(r.sealed, f.sealed);
        assert.equal(r.authorKey !== null, f.fullKey);
        assert.equal(toHex(r.feed), f.feed);
        assert.equal(r.seq, f.seq);
        assert.equal(r.time, f.time);
        assert.equal(r.ttl, f.ttl);
        assert.equal(r.expires, f.ttl === 0 ? null : f.time + f.ttl);
        assert.equal(toHex(r.payload), f.payload);
        assert.equal(toHex(r.id), v.id);
        assert.deepEqual(r.id, recordId(bytes));
        assert.equal(toHex(r.bytes), v.bytes);
        assert.equal(r.signedLength + 64, bytes.length);
        assert.deepEqual(r.signature, bytes.subarray(bytes.length - 64));
        const author = identities.get(v.author)!;
        assert.deepEqual(r.author, author.id);
        for (const scheme of [nodeEd25519, nobleEd25519]) {
          const resolveKey = f.fullKey ? noResolver : knows(author);
          assert.deepEqual(verifyRecord(r, { now: f.time, resolveKey, scheme }), author.signingKey);
        }
      });
    }

    for (const v of vectors.invalid.filter((x) => x.stage === 'decode')) {
      it(`refuses to decode (${v.code}): ${v.name}`, () => {
        assert.throws(() => decodeRecord(fromHex(v.bytes)), isCode(v.code));
      });
    }
    for (const v of vectors.invalid.filter((x) => x.stage === 'verify')) {
      it(`decodes, then refuses to verify (${v.code}): ${v.name}`, () => {
        const r = decodeRecord(fromHex(v.bytes));
        const keys = (v.keys ?? []).map((name) => identities.get(name)!);
        for (const scheme of [nodeEd25519, nobleEd25519]) {
          assert.throws(() => verifyRecord(r, { now: v.now!, resolveKey: knows(...keys), scheme }), isCode(v.code), scheme.name);
        }
      });
    }
  });

  describe('creation', () => {
    it('refuses fields out of range with RECORD_INVALID', () => {
      const bad: Partial<RecordFields>[] = [
        { kind: 16 as RecordKind },
        { kind: -1 as RecordKind },
        { priority: 4 as Priority },
        { seq: -1 },
        { seq: 2 ** 53 },
        { seq: 1.5 },
        { time: 2 ** 32 },
        { time: -1 },
        { time: Number.NaN },
        { ttl: 2 ** 32 },
        { ttl: -5 },
        { feed: new Uint8Array(7) },
        { feed: new Uint8Array(9) },
      ];
      for (const over of bad) assert.throws(() => createRecord(fields(over), alice), isCode('RECORD_INVALID'), JSON.stringify(over));
    });

    it('takes payloads up to MAX_PAYLOAD and refuses one byte more with RECORD_TOO_LARGE', () => {
      const r = createRecord(fields({ payload: new Uint8Array(MAX_PAYLOAD).fill(7) }), alice);
      assert.equal(r.payload.length, MAX_PAYLOAD);
      assert.deepEqual(decodeRecord(r.bytes).payload, r.payload);
      assert.throws(() => createRecord(fields({ payload: new Uint8Array(MAX_PAYLOAD + 1) }), alice), isCode('RECORD_TOO_LARGE'));
    });

    it('refuses an over-long payload on decode, even when correctly signed', () => {
      // Built by hand, as a misbehaving node would: the signature is good, the size is not.
      const payload = new Uint8Array(MAX_PAYLOAD + 1);
      const signed = new ByteWriter().u8(1).u8(RecordKind.Message).bytes(alice.id).bytes(feed).varint(1).u32(T0).varint(0).lengthPrefixed(payload).finish();
      const bytes = concatBytes(signed, alice.sign(concatBytes(SIGNING_DOMAIN, signed)));
      assert.throws(() => decodeRecord(bytes), isCode('RECORD_TOO_LARGE'));
    });

    it('has a small envelope: 92 bytes typical, 89 minimum, 102 maximum with a key id, 126 with a full key', () => {
      const typical = createRecord(fields({ seq: 100, ttl: 30 * 86400, payload: new Uint8Array(100) }), alice);
      assert.equal(envelopeLength(typical), 92);
      const min = createRecord(fields({ seq: 0, ttl: 0, payload: new Uint8Array(0) }), alice);
      assert.equal(envelopeLength(min), 89);
      const max = createRecord(fields({ seq: Number.MAX_SAFE_INTEGER, ttl: 0xffffffff, payload: new Uint8Array(MAX_PAYLOAD) }), alice);
      assert.equal(envelopeLength(max), 102);
      const maxFull = createRecord(fields({ fullKey: true, seq: Number.MAX_SAFE_INTEGER, ttl: 0xffffffff, payload: new Uint8Array(MAX_PAYLOAD) }), alice);
      assert.equal(envelopeLength(maxFull), 126);
    });

    it('round-trips every kind, priority and flag', () => {
      let seq = 0;
      for (const kind of [0, 1, 2, 3, 4, 5, 6, 7, 15] as RecordKind[]) {
        for (const priority of [Priority.Urgent, Priority.Normal, Priority.Low, Priority.Bulk]) {
          for (const sealed of [false, true]) {
            for (const fullKey of [false, true]) {
              const r = decodeRecord(createRecord(fields({ kind, priority, sealed, fullKey, seq: seq++ }), alice).bytes);
              assert.deepEqual([r.kind, r.priority, r.sealed, r.authorKey !== null], [kind, priority, sealed, fullKey]);
              assert.deepEqual(r.author, alice.id);
              verifyRecord(r, { now: T0, resolveKey: knows(alice) });
            }
          }
        }
      }
    });
  });

  describe('decoding', () => {
    it('reads records at any offset and keeps its own copy of the bytes', () => {
      const r = createRecord(fields({ payload: utf8('original') }), alice);
      const backing = concatBytes(new Uint8Array(13).fill(0xee), r.bytes, new Uint8Array(5));
      const input = backing.subarray(13, 13 + r.bytes.length);
      const d = decodeRecord(input);
      assert.deepEqual(d.bytes, r.bytes);
      assert.equal(toHex(d.payload), toHex(utf8('original')));
      input.fill(0);
      assert.equal(toHex(d.payload), toHex(utf8('original')));
      assert.deepEqual(d.id, r.id);
      verifyRecord(d, { now: T0, resolveKey: knows(alice) });
    });

    it('accepts a Buffer as input', () => {
      const r = createRecord(fields(), alice);
      const d = decodeRecord(Buffer.from(r.bytes));
      assert.deepEqual(d.id, r.id);
    });
  });

  describe('verification', () => {
    it('refuses records too far in the future with RECORD_FUTURE, allowing the clock skew', () => {
      const r = createRecord(fields({ time: T0 }), alice);
      const resolveKey = knows(alice);
      verifyRecord(r, { now: T0 - MAX_CLOCK_SKEW_S, resolveKey });
      assert.throws(() => verifyRecord(r, { now: T0 - MAX_CLOCK_SKEW_S - 1, resolveKey }), isCode('RECORD_FUTURE'));
      assert.throws(() => verifyRecord(r, { now: T0 - 61, resolveKey, maxClockSkewS: 60 }), isCode('RECORD_FUTURE'));
      verifyRecord(r, { now: T0 - 60, resolveKey, maxClockSkewS: 60 });
    });

    it('refuses expired records with RECORD_EXPIRED; ttl 0 never expires', () => {
      const r = createRecord(fields({ time: T0, ttl: 100 }), alice);
      const resolveKey = knows(alice);
      verifyRecord(r, { now: T0 + 99, resolveKey });
      assert.throws(() => verifyRecord(r, { now: T0 + 100, resolveKey }), isCode('RECORD_EXPIRED'));
      assert.throws(() => verifyRecord(r, { now: T0 + 10 ** 9, resolveKey }), isCode('RECORD_EXPIRED'));
      const forever = createRecord(fields({ time: T0, ttl: 0 }), alice);
      assert.equal(forever.expires, null);
      verifyRecord(forever, { now: 2 ** 40, resolveKey });
      // time + ttl beyond 2^32 is still a plain number, not a wrap-around.
      const late = createRecord(fields({ time: 0xffffff00, ttl: 0xffffffff }), alice);
      assert.equal(late.expires, 0xffffff00 + 0xffffffff);
      verifyRecord(late, { now: 0xffffff00, resolveKey });
    });

    it('says RECORD_UNKNOWN_AUTHOR when no key is known for the author id', () => {
      const r = createRecord(fields(), alice);
      assert.throws(() => verifyRecord(r, { now: T0, resolveKey: () => [] }), isCode('RECORD_UNKNOWN_AUTHOR'));
      assert.throws(() => verifyRecord(r, { now: T0, resolveKey: knows(bob) }), isCode('RECORD_UNKNOWN_AUTHOR'));
    });

    it('refuses a key offered for the id that does not hash to it (RECORD_BAD_SIGNATURE)', () => {
      const r = createRecord(fields(), alice);
      // A resolver confused into offering bob's key for alice's id.
      assert.throws(() => verifyRecord(r, { now: T0, resolveKey: () => [bob.signingKey] }), isCode('RECORD_BAD_SIGNATURE'));
    });

    it('tries every key sharing the author id (key-id collisions)', () => {
      const r = createRecord(fields(), alice);
      assert.deepEqual(verifyRecord(r, { now: T0, resolveKey: () => [bob.signingKey, alice.signingKey] }), alice.signingKey);
    });

    it('checks a self-certifying record against the key it carries, not the resolver', () => {
      const r = createRecord(fields({ fullKey: true }), alice);
      assert.deepEqual(verifyRecord(r, { now: T0, resolveKey: noResolver }), alice.signingKey);
    });

    it('refuses forgeries with RECORD_BAD_SIGNATURE', () => {
      const genuine = createRecord(fields({ seq: 9, payload: utf8('pay 5 to bob') }), alice);
      const signedLength = genuine.signedLength;
      const header = genuine.bytes.subarray(0, signedLength);
      const forgeries: [string, Uint8Array][] = [
        // Bob signs a record that names alice as its author.
        ['signed by bob, claiming alice', concatBytes(header, bob.sign(concatBytes(SIGNING_DOMAIN, header)))],
        // Alice's signature without the domain prefix.
        ['signature without the signing domain', concatBytes(header, alice.sign(header))],
        // The payload swapped for another of the same length.
        [
          'swapped payload',
          concatBytes(header.subarray(0, signedLength - 12), utf8('pay 9 to bob'), genuine.signature),
        ],
        // Another of alice's records' signature transplanted.
        ['transplanted signature', concatBytes(header, createRecord(fields({ seq: 10 }), alice).signature)],
        // The sealed flag set after signing.
        ['flag changed', (() => { const c = genuine.bytes.slice(); c[1]! |= 0x40; return c; })()],
        ['all-zero signature', concatBytes(header, new Uint8Array(64))],
      ];
      for (const [name, bytes] of forgeries) {
        const r = decodeRecord(bytes);
        for (const scheme of [nodeEd25519, nobleEd25519]) {
          assert.throws(() => verifyRecord(r, { now: T0, resolveKey: knows(alice, bob), scheme }), isCode('RECORD_BAD_SIGNATURE'), `${name} (${scheme.name})`);
        }
      }
      // A payload of a different length, with the length field fixed up to match.
      const longer = createRecord(fields({ seq: 9, payload: utf8('pay 500 to bob') }), bob);
      const spliced = concatBytes(header.subarray(0, signedLength - 13), longer.bytes.subarray(longer.signedLength - 15, longer.signedLength), genuine.signature);
      const r = decodeRecord(spliced);
      assert.equal(toHex(r.payload), toHex(utf8('pay 500 to bob')));
      assert.throws(() => verifyRecord(r, { now: T0, resolveKey: knows(alice) }), isCode('RECORD_BAD_SIGNATURE'));
    });

    it('refuses a full-key record whose key was swapped (RECORD_BAD_SIGNATURE)', () => {
      const r = createRecord(fields({ fullKey: true }), alice);
      const c = r.bytes.slice();
      c.set(bob.signingKey, 2);
      const d = decodeRecord(c);
      assert.deepEqual(d.author, bob.id);
      assert.throws(() => verifyRecord(d, { now: T0, resolveKey: noResolver }), isCode('RECORD_BAD_SIGNATURE'));
    });
  });

  describe('forks', () => {
    const random = seededRandom(7);
    const carol = Identity.generate(random);
    const base = fields({ seq: 42, payload: utf8('first') });
    const a = createRecord(base, carol);

    it('flags two records with the same author, feed and seq but different content', () => {
      const b = createRecord({ ...base, payload: utf8('second') }, carol);
      assert.equal(isFork(a, b), true);
      assert.equal(isFork(b, a), true);
      // Any signed difference counts: time, ttl, kind, priority.
      for (const over of [{ time: T0 + 1 }, { ttl: 1 }, { kind: RecordKind.Mail }, { priority: Priority.Bulk }, { sealed: true }]) {
        assert.equal(isFork(a, createRecord({ ...base, ...over }, carol)), true, JSON.stringify(over));
      }
    });

    it('sees a fork behind the self-certifying form of the same author', () => {
      const b = createRecord({ ...base, fullKey: true, payload: utf8('other') }, carol);
      assert.equal(isFork(a, b), true);
    });

    it('does not flag a record with itself, a re-decoded copy, or records that differ in author, feed or seq', () => {
      assert.equal(isFork(a, a), false);
      assert.equal(isFork(a, decodeRecord(Uint8Array.from(a.bytes))), false);
      assert.equal(isFork(a, createRecord({ ...base, seq: 43, payload: utf8('x') }, carol)), false);
      assert.equal(isFork(a, createRecord({ ...base, feed: fromHex('0807060504030201'), payload: utf8('x') }, carol)), false);
      assert.equal(isFork(a, createRecord({ ...base, payload: utf8('x') }, alice)), false);
    });

    it('is evidence that verifies: both sides of a fork carry the author’s valid signature', () => {
      const b = createRecord({ ...base, payload: utf8('second') }, carol);
      for (const r of [a, b]) verifyRecord(r, { now: T0, resolveKey: knows(carol) });
      assert.notDeepEqual(a.id, b.id);
    });
  });
});

