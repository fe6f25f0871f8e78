/**
 * Records against hostile bytes (fast-check; the seed is printed and FC_SEED=<seed> replays):
 * random bytes and at least 10,000 mutated valid records (bit flips, byte replacements,
 * truncations, insertions, deletions, splices) must either fail to decode with a RECORD_*
 * MeshError or decode into a record that verifyRecord refuses with a RECORD_* MeshError —
 * never verify, unless the mutation left the bytes unchanged. And forgeries built on purpose:
 * records signed by one key that claim another author, swapped payloads, transplanted
 * signatures.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { concatBytes, equalBytes, toHex, utf8, varintLength } from '../../mesh/bytes.ts';
import { MeshError } from '../../mesh/errors.ts';
import { Identity } from '../../mesh/identity.ts';
import { createRecord, decodeRecord, Priority, RecordKind, verifyRecord, type Record } from '../../mesh/record.ts';
import { seededRandom } from '../helpers/random.ts';

const seed = Number(process.env.FC_SEED ?? 20260304);
const MUTATED_RUNS = 10_000;
const T0 = 1_790_000_000;
const SIGNING_DOMAIN = utf8('citizen-record-v1');

const random = seededRandom(seed);
const authors = [Identity.generate(random), Identity.generate(random), Identity.generate(random)];
const resolveKey = (id: Uint8Array) => authors.filter((a) => equalBytes(a.id, id)).map((a) => a.signingKey);

/** Valid records of every shape: both author forms, short and long varints, empty to 1 KiB payloads. */
const valid: Record[] = [];
for (let i = 0; i < 24; i++) {
  const author = authors[i % authors.length]!;
  valid.push(
    createRecord(
      {
        kind: (i % 8) as RecordKind,
        priority: (i % 4) as Priority,
        sealed: i % 5 === 0,
        fullKey: i % 6 === 0,
        feed: random(8),
        seq: [0, 5, 127, 128, 300, 2 ** 20, 2 ** 40, Number.MAX_SAFE_INTEGER][i % 8]!,
        time: T0 - (i % 3) * 10,
        ttl: [0, 60, 30 * 86400, 0xffffffff][i % 4]!,
        payload: random([0, 1, 16, 100, 233, 1024][i % 6]!),
      },
      author,
    ),
  );
}

/** Every failure must be a MeshError with a RECORD_ code. */
function assertRecordError(err: unknown, context: string): string {
  assert.ok(err instanceof MeshError, `${context}: not a MeshError: ${String(err)}`);
  assert.equal(err.name, 'MeshError');
  assert.equal(typeof err.code, 'string');
  assert.ok(err.code.startsWith('RECORD_'), `${context}: code ${err.code}`);
  return err.code;
}

/** Decode and verify untrusted bytes; returns the error code, or 'VERIFIED'. */
function judge(bytes: Uint8Array, context: () => string): string {
  let record: Record;
  try {
    record = decodeRecord(bytes);
  } catch (err) {
    return assertRecordError(err, context());
  }
  try {
    verifyRecord(record, { now: T0, resolveKey });
  } catch (err) {
    return assertRecordError(err, context());
  }
  return 'VERIFIED';
}

type Mutation = (b: Uint8Array) => Uint8Array;
const at = (b: Uint8Array, i: number) => (b.length === 0 ? 0 : i % b.length);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().chain((i) => fc.integer({ min: 0, max: 7 }).map((bit) => (b: Uint8Array) => {
    const c = b.slice();
    if (c.length) c[at(c, i)]! ^= 1 << bit;
    return c;
  })),
  fc.tuple(fc.nat(), fc.nat(255)).map(([i, v]) => (b: Uint8Array) => {
    const c = b.slice();
    if (c.length) c[at(c, i)] = v;
    return c;
  }),
  fc.nat().map((n) => (b: Uint8Array) => b.slice(0, at(b, n))),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 9 })).map(([i, ins]) => (b: Uint8Array) => {
    const k = b.length === 0 ? 0 : i % (b.length + 1);
    return concatBytes(b.subarray(0, k), ins, b.subarray(k));
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 16 })).map(([i, n]) => (b: Uint8Array) => {
    const k = at(b, i);
    return concatBytes(b.subarray(0, k), b.subarray(k + n));
  }),
  // Splice a stretch of another valid record in at the same offset.
  fc.tuple(fc.nat(valid.length - 1), fc.nat(), fc.integer({ min: 1, max: 64 })).map(([j, i, n]) => (b: Uint8Array) => {
    const other = valid[j]!.bytes;
    const k = at(b, i);
    const c = b.slice();
    c.set(other.subarray(k, Math.min(k + n, c.length, other.length)), k);
    return c;
  }),
);

describe('mesh/record (property)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('the fixtures are valid records', () => {
    for (const r of valid) assert.equal(judge(r.bytes, () => 'fixture'), 'VERIFIED');
  });

  it('random bytes: a RECORD_ error, never a crash or a verified record', () => {
    const codes = new Map<string, number>();
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // Mostly past the version check, to reach the deeper rules.
      fc.uint8Array({ maxLength: 300 }).map((b) => concatBytes(Uint8Array.of(1), b)),
      fc.tuple(fc.nat(255), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ maxLength: 200 })).map(([flags, ids, rest]) =>
        concatBytes(Uint8Array.of(1, flags), ids, rest),
      ),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        const code = judge(b, () => toHex(b));
        assert.notEqual(code, 'VERIFIED');
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }),
      { seed, numRuns: 3000 },
    );
    console.log(`      outcomes: ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}`);
  });

  it(`${MUTATED_RUNS} mutated valid records: each refused with a RECORD_ error unless unchanged`, function () {
    this.timeout(120_000);
    const codes = new Map<string, number>();
    let noops = 0;
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.array(mutation, { minLength: 1, maxLength: 3 }), (j, mutations) => {
        const original = valid[j]!.bytes;
        const mutated = mutations.reduce((b, m) => m(b), original);
        const code = judge(mutated, () => `record ${j} mutated to ${toHex(mutated)}`);
        if (equalBytes(mutated, original)) {
          noops++;
          assert.equal(code, 'VERIFIED');
        }
        fc.pre(!equalBytes(mutated, original)); // a no-op does not count towards the runs
        assert.notEqual(code, 'VERIFIED', `record ${j} still verifies after mutation: ${toHex(mutated)}`);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }),
      { seed, numRuns: MUTATED_RUNS },
    );
    const refused = [...codes.values()].reduce((a, b) => a + b, 0);
    console.log(`      ${refused} refused (${[...codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')}), ${noops} no-ops`);
    assert.equal(refused, MUTATED_RUNS);
    // The mutations reach every rule, not just the first byte.
    for (const code of ['RECORD_BAD_SIGNATURE', 'RECORD_TRUNCATED', 'RECORD_TRAILING', 'RECORD_VERSION', 'RECORD_UNKNOWN_AUTHOR']) {
      assert.ok((codes.get(code) ?? 0) > 0, `no mutation produced ${code}`);
    }
  });

  it('forgeries are refused with RECORD_BAD_SIGNATURE', () => {
    const forge = fc.tuple(
      fc.nat(valid.length - 1),
      fc.nat(authors.length - 1),
      fc.nat(valid.length - 1),
      fc.constantFrom('claim-other-author', 'swap-payload', 'transplant-signature', 'resign-other-content'),
    );
    fc.assert(
      fc.property(forge, ([j, k, m, how]) => {
        const genuine = valid[j]!;
        const other = valid[m]!;
        const forger = authors[k]!;
        const header = genuine.bytes.subarray(0, genuine.signedLength);
        let bytes: Uint8Array;
        switch (how) {
          case 'claim-other-author':
            // The forger signs the genuine author's header: the signature is real, the key is not the author's.
            if (equalBytes(forger.id, genuine.author)) return;
            bytes = concatBytes(header, forger.sign(concatBytes(SIGNING_DOMAIN, header)));
            break;
          case 'swap-payload': {
            // The genuine header and signature around another payload, with the length adjusted.
            if (equalBytes(other.payload, genuine.payload)) return;
            const prefix = header.subarray(0, header.length - genuine.payload.length - varintLength(genuine.payload.length));
            const otherTail = other.bytes.subarray(other.signedLength - other.payload.length - varintLength(other.payload.length), other.signedLength);
            bytes = concatBytes(prefix, otherTail, genuine.signature);
            break;
          }
          case 'transplant-signature':
            if (m === j) return;
            bytes = concatBytes(header, other.signature);
            break;
          case 'resign-other-content': {
            // The forger signs a new record naming the genuine author.
            if (equalBytes(forger.id, genuine.author)) return;
            const fake = createRecord({ kind: genuine.kind, feed: genuine.feed, seq: genuine.seq, time: T0, payload: utf8('forged') }, forger);
            const authorField = genuine.authorKey ?? genuine.author;
            const tail = fake.bytes.subarray(2 + 8, fake.signedLength);
            const forgedHeader = concatBytes(header.subarray(0, 2), authorField, tail);
            bytes = concatBytes(forgedHeader, forger.sign(concatBytes(SIGNING_DOMAIN, forgedHeader)));
            break;
          }
        }
        const record = decodeRecord(bytes);
        assert.throws(
          () => verifyRecord(record, { now: T0, resolveKey }),
          (err: unknown) => err instanceof MeshError && err.code === 'RECORD_BAD_SIGNATURE',
          `${how}: ${toHex(bytes)}`,
        );
      }),
      { seed, numRuns: 300 },
    );
  });
});
