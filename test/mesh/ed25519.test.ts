/**
 * Ed25519: the two SignatureScheme implementations against RFC 8032 §7.1 and the invalid
 * vectors in test/vectors/ed25519-rfc8032.json, and against each other on random mutations of
 * valid signatures. `valid` in the vectors is strict RFC 8032 as noble implements it.
 *
 * Classes where Node's OpenSSL binding on its own decides differently, and what
 * mesh/ed25519.ts does about each (the vectors show every one):
 * - non-canonical or negative-zero A (y ≥ p, x = 0 with the sign bit): OpenSSL reduces and
 *   accepts; the canonical-encoding precheck rejects them.
 * - wrong-length keys: OpenSSL's SPKI import accepts a 33-byte key; the length check rejects.
 * - small-order A (the 8 torsion points): OpenSSL accepts [S]B = R + [k]A whenever [k]A is
 *   the identity (for A = identity, every message); noble rejects small-order keys, and so
 *   does the node scheme's key check.
 * - mixed-order A or R (a torsion component): noble checks the cofactored equation
 *   [8][S]B = [8]R + [8][k]A and accepts; OpenSSL checks [S]B = R + [k]A and rejects. RFC
 *   8032 §5.1.7 allows either. The node scheme confirms every OpenSSL rejection with noble,
 *   so it accepts these too.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { concatBytes, fromHex, toHex } from '../../mesh/bytes.ts';
import { createNodeEd25519, defaultEd25519, nobleEd25519, nodeEd25519, type SignatureScheme } from '../../mesh/ed25519.ts';
import { seededRandom } from '../helpers/random.ts';

interface RfcVector {
  name: string;
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}
interface Vector {
  name: string;
  class: string;
  publicKey: string;
  message: string;
  signature: string;
  valid: boolean;
  comment?: string;
}
const file = JSON.parse(readFileSync(new URL('../vectors/ed25519-rfc8032.json', import.meta.url), 'utf8')) as {
  rfc8032: RfcVector[];
  vectors: Vector[];
};

const seed = Number(process.env.FC_SEED ?? 20260302);
const schemes: SignatureScheme[] = [nobleEd25519, nodeEd25519];
const L = ed25519.Point.Fn.ORDER;
const P = ed25519.Point.Fp.ORDER;

function toLE(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}
function fromLE(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

describe('mesh/ed25519', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('uses the Node implementation by default', () => {
    assert.equal(defaultEd25519, nodeEd25519);
  });

  describe('RFC 8032 §7.1', () => {
    assert.deepEqual(
      file.rfc8032.map((v) => v.name),
      ['TEST 1', 'TEST 2', 'TEST 3', 'TEST 1024', 'TEST SHA(abc)'],
    );
    for (const scheme of schemes) {
      it(`${scheme.name}: derives the public keys and signs to the published signatures`, () => {
        for (const v of file.rfc8032) {
          assert.equal(toHex(scheme.publicKey(fromHex(v.secretKey))), v.publicKey, v.name);
          assert.equal(toHex(scheme.sign(fromHex(v.message), fromHex(v.secretKey))), v.signature, v.name);
          assert.equal(scheme.verify(fromHex(v.signature), fromHex(v.message), fromHex(v.publicKey)), true, v.name);
        }
      });
    }
  });

  describe('vectors (valid and invalid): both implementations give the expected verdict', () => {
    const classes = [...new Set(file.vectors.map((v) => v.class))];
    it('cover the classes that matter', () => {
      for (const c of [
        'rfc8032',
        's-not-reduced',
        'non-canonical-r',
        'non-canonical-a',
        'negative-zero-r',
        'negative-zero-a',
        'wrong-length',
        'flipped-bit',
        'wrong-message',
        'wrong-key',
        'small-order-a',
        'mixed-order-a',
        'mixed-order-r',
      ]) {
        assert.ok(classes.includes(c), c);
      }
      assert.equal(file.vectors.filter((v) => v.class === 'small-order-a').length, 8);
    });
    for (const c of classes) {
      const vectors = file.vectors.filter((v) => v.class === c);
      it(`${c} (${vectors.length})`, () => {
        for (const v of vectors) {
          for (const scheme of schemes) {
            const verdict = scheme.verify(fromHex(v.signature), fromHex(v.message), fromHex(v.publicKey));
            assert.equal(verdict, v.valid, `${scheme.name}: ${v.name}`);
          }
        }
      });
    }

    it('a fresh node scheme (empty key cache) agrees too, twice in a row', () => {
      const fresh = createNodeEd25519(4);
      for (let round = 0; round < 2; round++) {
        for (const v of file.vectors) {
          assert.equal(fresh.verify(fromHex(v.signature), fromHex(v.message), fromHex(v.publicKey)), v.valid, v.name);
        }
      }
    });
  });

  describe('against each other', () => {
    it('each verifies the other’s signatures (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), (secret, message) => {
          const publicKey = nobleEd25519.publicKey(secret);
          assert.deepEqual(nodeEd25519.publicKey(secret), publicKey);
          const a = nobleEd25519.sign(message, secret);
          const b = nodeEd25519.sign(message, secret);
          assert.deepEqual(a, b); // deterministic signatures
          assert.ok(nobleEd25519.verify(b, message, publicKey));
          assert.ok(nodeEd25519.verify(a, message, publicKey));
        }),
        { seed, numRuns: 40 },
      );
    });

    it('give identical verdicts on random mutations of valid (signature, message, key) (property)', () => {
      const random = seededRandom(seed);
      const bases = file.rfc8032.map((v) => ({ sig: fromHex(v.signature), msg: fromHex(v.message), key: fromHex(v.publicKey) }));
      for (let i = 0; i < 3; i++) {
        const secret = random(32);
        const msg = random(i * 40);
        bases.push({ sig: nobleEd25519.sign(msg, secret), msg, key: nobleEd25519.publicKey(secret) });
      }
      for (const v of file.vectors.filter((x) => x.valid && x.class !== 'rfc8032')) {
        bases.push({ sig: fromHex(v.signature), msg: fromHex(v.message), key: fromHex(v.publicKey) });
      }
      const torsion = ED25519_TORSION_SUBGROUP.map((h) => ed25519.Point.fromHex(h));
      type Triple = { sig: Uint8Array; msg: Uint8Array; key: Uint8Array };
      const flip = (b: Uint8Array, bit: number) => {
        const c = b.slice();
        if (c.length > 0) c[(bit >> 3) % c.length]! ^= 1 << (bit & 7);
        return c;
      };
      const addTorsion = (point: Uint8Array, t: number) => {
        try {
          return ed25519.Point.fromBytes(point).add(torsion[t]!).toBytes();
        } catch {
          return point;
        }
      };
      const mutation = fc.oneof(
        fc.constant((x: Triple) => x),
        fc.nat(511).map((bit) => (x: Triple) => ({ ...x, sig: flip(x.sig, bit) })),
        fc.nat(255).map((bit) => (x: Triple) => ({ ...x, key: flip(x.key, bit) })),
        fc.nat(8191).map((bit) => (x: Triple) => ({ ...x, msg: flip(x.msg, bit) })),
        fc.tuple(fc.nat(63), fc.nat(255)).map(([i, b]) => (x: Triple) => {
          const sig = x.sig.slice();
          sig[i] = b;
          return { ...x, sig };
        }),
        fc.integer({ min: 1, max: 15 }).map((k) => (x: Triple) => {
          const s = fromLE(x.sig.subarray(32)) + BigInt(k) * L;
          return s < 2n ** 256n ? { ...x, sig: concatBytes(x.sig.subarray(0, 32), toLE(s)) } : x;
        }),
        fc.integer({ min: 1, max: 7 }).map((t) => (x: Triple) => ({ ...x, sig: concatBytes(addTorsion(x.sig.subarray(0, 32), t), x.sig.subarray(32)) })),
        fc.integer({ min: 1, max: 7 }).map((t) => (x: Triple) => ({ ...x, key: addTorsion(x.key, t) })),
        fc.nat(7).map((t) => (x: Triple) => ({ ...x, key: torsion[t]!.toBytes() })),
        fc.nat(7).map((t) => (x: Triple) => ({ ...x, sig: concatBytes(torsion[t]!.toBytes(), x.sig.subarray(32)) })),
        // Non-canonical encodings: y + p (only representable for y < 19), and the sign bit on x = 0.
        fc.tuple(fc.integer({ min: 0, max: 18 }), fc.boolean(), fc.boolean()).map(([y, sign, inKey]) => (x: Triple) => {
          const enc = toLE(BigInt(y) + P);
          if (sign) enc[31]! |= 0x80;
          return inKey ? { ...x, key: enc } : { ...x, sig: concatBytes(enc, x.sig.subarray(32)) };
        }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }).map((r) => (x: Triple) => ({ ...x, sig: concatBytes(r, x.sig.subarray(32)) })),
        fc.integer({ min: 0, max: 66 }).map((n) => (x: Triple) => ({ ...x, sig: concatBytes(x.sig, new Uint8Array(64)).subarray(0, n) })),
        fc.integer({ min: 0, max: 34 }).map((n) => (x: Triple) => ({ ...x, key: concatBytes(x.key, new Uint8Array(32)).subarray(0, n) })),
        fc.uint8Array({ maxLength: 40 }).map((m) => (x: Triple) => ({ ...x, msg: m })),
      );
      let accepted = 0;
      fc.assert(
        fc.property(fc.nat(bases.length - 1), fc.array(mutation, { minLength: 1, maxLength: 3 }), (b, mutations) => {
          const t = mutations.reduce((x, m) => m(x), bases[b]!);
          const noble = nobleEd25519.verify(t.sig, t.msg, t.key);
          const node = nodeEd25519.verify(t.sig, t.msg, t.key);
          if (noble) accepted++;
          assert.equal(node, noble, `sig ${toHex(t.sig)} msg ${toHex(t.msg)} key ${toHex(t.key)}`);
        }),
        { seed, numRuns: 400 },
      );
      assert.ok(accepted > 0, 'some cases stay valid');
    });
  });
});
