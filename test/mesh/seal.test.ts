/**
 * Sealing: the version-1 known answers and invalid payloads in test/vectors/seal-v1.json,
 * round trips to 1, 2, 5 and 32 recipients, and open() on mutated and random bytes
 * (fast-check; the seed is printed and FC_SEED=<seed> replays): always a SEAL_* MeshError,
 * never a wrong plaintext.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { concatBytes, equalBytes, fromHex, toHex, utf8 } from '../../mesh/bytes.ts';
import { MeshError } from '../../mesh/errors.ts';
import { Identity, keyId } from '../../mesh/identity.ts';
import { MAX_RECIPIENTS, open, seal, sealedRecipients, sealOverhead } from '../../mesh/seal.ts';
import { seededRandom } from '../helpers/random.ts';

interface KnownAuthor {
  signingSeed: string;
  agreementSecret: string;
}
const vectors = JSON.parse(readFileSync(new URL('../vectors/seal-v1.json', import.meta.url), 'utf8')) as {
  authors: { [name: string]: KnownAuthor };
  valid: { name: string; recipients: string[]; context: string; plaintext: string; ephemeralSecret: string; sealed: string }[];
  invalid: { name: string; sealed: string; recipient: string; context: string; code: string }[];
};
const known = new Map(
  Object.entries(vectors.authors).map(([name, a]) => [name, new Identity(fromHex(a.signingSeed), fromHex(a.agreementSecret))]),
);

const seed = Number(process.env.FC_SEED ?? 20260305);
const random = seededRandom(seed);
const people = Array.from({ length: 40 }, () => Identity.generate(random));
const context = people[0]!.id;

function isCode(code: string) {
  return (err: unknown) => err instanceof MeshError && err.code === code;
}

describe('mesh/seal', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  describe('version-1 known answers (test/vectors/seal-v1.json)', () => {
    for (const v of vectors.valid) {
      it(`seals exactly and opens for every recipient: ${v.name}`, () => {
        const recipients = v.recipients.map((n) => known.get(n)!);
        const sealed = seal(fromHex(v.plaintext), recipients.map((r) => r.agreementKey), fromHex(v.context), () => fromHex(v.ephemeralSecret));
        assert.equal(toHex(sealed), v.sealed);
        assert.equal(sealed.length, fromHex(v.plaintext).length + sealOverhead(recipients.length));
        assert.deepEqual(sealedRecipients(fromHex(v.sealed)), recipients.map((r) => keyId(r.agreementKey)));
        for (const r of recipients) assert.equal(toHex(open(fromHex(v.sealed), r, fromHex(v.context))), v.plaintext);
      });
    }
    for (const v of vectors.invalid) {
      it(`refuses (${v.code}): ${v.name}`, () => {
        assert.throws(() => open(fromHex(v.sealed), known.get(v.recipient)!, fromHex(v.context)), isCode(v.code));
      });
    }
  });

  describe('round trips', () => {
    for (const n of [1, 2, 5, MAX_RECIPIENTS]) {
      it(`${n} recipient${n > 1 ? 's' : ''}: each opens it, nobody else can`, () => {
        const recipients = people.slice(1, 1 + n);
        const plaintext = utf8(`a note for ${n}`);
        const sealed = seal(plaintext, recipients.map((r) => r.agreementKey), context, random);
        assert.equal(sealed.length, plaintext.length + sealOverhead(n));
        assert.deepEqual(sealedRecipients(sealed), recipients.map((r) => keyId(r.agreementKey)));
        for (const r of recipients) assert.deepEqual(open(sealed, r, context), plaintext);
        for (const outsider of [people[0]!, people[39]!]) assert.throws(() => open(sealed, outsider, context), isCode('SEAL_NOT_RECIPIENT'));
        // The context binds: the right recipient with another context cannot open it.
        assert.throws(() => open(sealed, recipients[n - 1]!, people[2]!.id), isCode('SEAL_FORGED'));
        assert.throws(() => open(sealed, recipients[0]!, new Uint8Array(0)), isCode('SEAL_FORGED'));
      });
    }

    it('costs 58 bytes for one recipient and 56 more for each further one', () => {
      assert.equal(sealOverhead(1), 58);
      assert.equal(sealOverhead(2), 114);
      assert.equal(sealOverhead(MAX_RECIPIENTS), 58 + 56 * 31);
    });

    it('uses a fresh ephemeral key each time: the same plaintext seals differently', () => {
      const keys = [people[1]!.agreementKey];
      const a = seal(utf8('same'), keys, context);
      const b = seal(utf8('same'), keys, context);
      assert.notDeepEqual(a, b);
      assert.deepEqual(open(a, people[1]!, context), open(b, people[1]!, context));
    });

    it('round-trips any plaintext to any recipients (property)', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 2000 }),
          fc.uniqueArray(fc.nat(people.length - 1), { minLength: 1, maxLength: 6 }),
          fc.uint8Array({ maxLength: 40 }),
          (plaintext, who, ctx) => {
            const recipients = who.map((i) => people[i]!);
            const sealed = seal(plaintext, recipients.map((r) => r.agreementKey), ctx, random);
            for (const r of recipients) assert.deepEqual(open(sealed, r, ctx), plaintext);
          },
        ),
        { seed, numRuns: 60 },
      );
    });
  });

  describe('bad input', () => {
    it('refuses 0 or more than 32 recipients with SEAL_RECIPIENTS', () => {
      assert.throws(() => seal(utf8('x'), [], context), isCode('SEAL_RECIPIENTS'));
      const many = Array.from({ length: MAX_RECIPIENTS + 1 }, (_, i) => people[i % people.length]!.agreementKey);
      assert.throws(() => seal(utf8('x'), many, context), isCode('SEAL_RECIPIENTS'));
    });

    it('refuses recipient keys that are not X25519 keys with KEY_INVALID', () => {
      assert.throws(() => seal(utf8('x'), [new Uint8Array(31)], context), isCode('KEY_INVALID'));
      assert.throws(() => seal(utf8('x'), [new Uint8Array(33)], context), isCode('KEY_INVALID'));
      // A low-order point gives an all-zero shared secret.
      assert.throws(() => seal(utf8('x'), [new Uint8Array(32)], context), isCode('KEY_INVALID'));
      assert.throws(() => seal(utf8('x'), [people[1]!.agreementKey, Uint8Array.of(1, ...new Uint8Array(31))], context), isCode('KEY_INVALID'));
    });

    it('mutated sealed payloads: a SEAL_ error, never a plaintext (property)', () => {
      const plaintext = utf8('meet at the north gate at seven');
      const groups = [1, 3].map((n) => {
        const recipients = people.slice(5, 5 + n);
        return { recipients, sealed: seal(plaintext, recipients.map((r) => r.agreementKey), context, random) };
      });
      const mutation = fc.oneof(
        fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([i, bit]) => (b: Uint8Array) => {
          const c = b.slice();
          c[i % c.length]! ^= 1 << bit;
          return c;
        }),
        fc.tuple(fc.nat(), fc.nat(255)).map(([i, v]) => (b: Uint8Array) => {
          const c = b.slice();
          c[i % c.length] = v;
          return c;
        }),
        fc.nat().map((n) => (b: Uint8Array) => b.slice(0, n % b.length)),
        fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([i, ins]) => (b: Uint8Array) => {
          const k = i % (b.length + 1);
          return concatBytes(b.subarray(0, k), ins, b.subarray(k));
        }),
        fc.tuple(fc.nat(), fc.integer({ min: 1, max: 16 })).map(([i, n]) => (b: Uint8Array) => {
          const k = i % b.length;
          return concatBytes(b.subarray(0, k), b.subarray(k + n));
        }),
      );
      const codes = new Map<string, number>();
      fc.assert(
        fc.property(fc.nat(1), fc.nat(2), mutation, (g, who, mutate) => {
          const { recipients, sealed } = groups[g]!;
          const reader = recipients[who % recipients.length]!;
          const mutated = mutate(sealed);
          let opened: Uint8Array;
          try {
            opened = open(mutated, reader, context);
          } catch (err) {
            assert.ok(err instanceof MeshError && err.code.startsWith('SEAL_'), String(err));
            codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
            return;
          }
          assert.ok(equalBytes(mutated, sealed), `a mutated payload opened: ${toHex(mutated)}`);
          assert.deepEqual(opened, plaintext);
        }),
        { seed, numRuns: 2000 },
      );
      console.log(`      outcomes: ${[...codes].map(([c, n]) => `${c} ${n}`).join(', ')}`);
      for (const code of ['SEAL_FORGED', 'SEAL_MALFORMED', 'SEAL_VERSION', 'SEAL_NOT_RECIPIENT']) assert.ok(codes.has(code), code);
    });

    it('random bytes: a SEAL_ error (property)', () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }),
            fc.uint8Array({ maxLength: 200 }).map((b) => concatBytes(Uint8Array.of(1), b)),
            // A plausible header naming the reader, then garbage.
            fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 100 })).map(([e, rest]) =>
              concatBytes(Uint8Array.of(1), e, Uint8Array.of(1), keyId(people[1]!.agreementKey), rest),
            ),
          ),
          (bytes) => {
            assert.throws(() => open(bytes, people[1]!, context), (err: unknown) => err instanceof MeshError && err.code.startsWith('SEAL_'));
          },
        ),
        { seed, numRuns: 1000 },
      );
    });
  });
});
