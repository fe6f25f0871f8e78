/**
 * Identities: key ids, fingerprints (format and a known answer), secrets that never print or
 * serialise, the key-file round trip, and key files that are not keys (fast-check, printed
 * seed; FC_SEED=<seed> replays).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { fromHex, toHex } from '../../mesh/bytes.ts';
import { nobleEd25519, nodeEd25519 } from '../../mesh/ed25519.ts';
import { MeshError } from '../../mesh/errors.ts';
import { fingerprint, Identity, isKeyIdOf, KEY_ID_LENGTH, keyId } from '../../mesh/identity.ts';
import { seededRandom } from '../helpers/random.ts';

const seed = Number(process.env.FC_SEED ?? 20260303);
const FINGERPRINT = /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/;

/** The fingerprint written out a second way: the first 80 bits of the hash as a bit string. */
function referenceFingerprint(key: Uint8Array): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const hash = createHash('sha256').update('citizen-fingerprint-v1').update(key).digest();
  const bits = [...hash.subarray(0, 10)].map((b) => b.toString(2).padStart(8, '0')).join('');
  let out = '';
  for (let i = 0; i < 80; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return out.match(/.{4}/g)!.join('-');
}

interface KnownAuthor {
  signingSeed: string;
  agreementSecret: string;
  signingKey: string;
  agreementKey: string;
  keyId: string;
  fingerprint: string;
}
const { authors } = JSON.parse(readFileSync(new URL('../vectors/record-v1.json', import.meta.url), 'utf8')) as {
  authors: Record<string, KnownAuthor>;
};

function isCode(code: string) {
  return (err: unknown) => err instanceof MeshError && err.code === code;
}

describe('mesh/identity', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('derives known keys, key ids and fingerprints from known secrets', () => {
    assert.ok(Object.keys(authors).length >= 3);
    for (const [name, a] of Object.entries(authors)) {
      for (const scheme of [nobleEd25519, nodeEd25519]) {
        const id = new Identity(fromHex(a.signingSeed), fromHex(a.agreementSecret), scheme);
        assert.equal(toHex(id.signingKey), a.signingKey, name);
        assert.equal(toHex(id.agreementKey), a.agreementKey, name);
        assert.equal(toHex(id.id), a.keyId, name);
        assert.equal(id.fingerprint, a.fingerprint, name);
      }
    }
  });

  it('keeps fingerprints stable for a fixed key (changing them breaks every printed one)', () => {
    // The RFC 8032 TEST 1 public key, and the all-zero key.
    assert.equal(fingerprint(fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')), 'mqry-62bk-8h7c-y9rp');
    assert.equal(fingerprint(new Uint8Array(32)), 'jqgi-iitd-wuik-iawz');
    assert.equal(toHex(keyId(new Uint8Array(32))), '919727160aacbb13');
  });

  it('remembers key ids by content: a changed key or a changed answer never leaks into the next one', () => {
    const key = new Uint8Array(32).fill(5);
    const first = keyId(key);
    first.fill(0); // each caller owns its copy
    assert.equal(toHex(keyId(key)), toHex(keyId(new Uint8Array(32).fill(5))));
    assert.notEqual(toHex(keyId(key)), '0000000000000000');
    key[0] = 6; // same array, other bytes: another id
    assert.deepEqual(keyId(key), new Uint8Array(createHash('sha256').update('citizen-key-id-v1').update(key).digest().subarray(0, 8)));
    assert.ok(isKeyIdOf(key, keyId(key)));
    assert.ok(!isKeyIdOf(key, keyId(new Uint8Array(32).fill(5))));
    // More keys than the memory holds still answer right.
    for (let i = 0; i < 9000; i++) {
      const k = new Uint8Array(32);
      new DataView(k.buffer).setUint32(0, i);
      if (i % 997 === 0) assert.deepEqual(keyId(k), new Uint8Array(createHash('sha256').update('citizen-key-id-v1').update(k).digest().subarray(0, 8)));
      else keyId(k);
    }
  });

  it('has 8-byte key ids and fingerprints of four groups of four readable characters (property)', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (key) => {
        assert.equal(keyId(key).length, KEY_ID_LENGTH);
        const fp = fingerprint(key);
        assert.match(fp, FINGERPRINT);
        assert.doesNotMatch(fp, /[lo01]/);
        assert.equal(fp, referenceFingerprint(key));
        assert.deepEqual(keyId(key), new Uint8Array(createHash('sha256').update('citizen-key-id-v1').update(key).digest().subarray(0, 8)));
        seen.add(fp);
      }),
      { seed, numRuns: 500 },
    );
    assert.ok(seen.size > 490, 'fingerprints of different keys differ');
  });

  it('signs with either scheme to the same signature', () => {
    const random = seededRandom(seed);
    const a = Identity.generate(random, nobleEd25519);
    const again = Identity.importSecret(a.exportSecret(), nodeEd25519);
    const msg = random(50);
    assert.deepEqual(a.sign(msg), again.sign(msg));
    assert.ok(nodeEd25519.verify(a.sign(msg), msg, a.signingKey));
  });

  it('agrees on one shared secret from both sides', () => {
    const random = seededRandom(seed + 1);
    const a = Identity.generate(random);
    const b = Identity.generate(random);
    assert.deepEqual(a.agree(b.agreementKey), b.agree(a.agreementKey));
    assert.throws(() => a.agree(new Uint8Array(5)), isCode('KEY_INVALID'));
    assert.throws(() => a.agree(new Uint8Array(32)), isCode('KEY_INVALID')); // low-order point: all-zero secret
  });

  it('never shows its secrets in JSON, util.inspect, console output or enumerable fields', () => {
    for (let i = 0; i < 20; i++) {
      const id = Identity.generate(seededRandom(seed + 100 + i));
      const secrets = Object.values(id.exportSecret()).filter((v): v is string => typeof v === 'string');
      assert.equal(secrets.length, 2);
      const shown = [
        JSON.stringify(id),
        JSON.stringify({ nested: { id } }),
        inspect(id),
        inspect({ nested: [id] }, { depth: 10 }),
        inspect(id, { customInspect: false, showHidden: true, depth: 10 }),
        String(id),
        `${id}`,
        JSON.stringify(Object.entries(id)),
        JSON.stringify(structuredClone(id.toJSON())),
        JSON.stringify(id.publicIdentity, (_k, v: unknown) => (v instanceof Uint8Array ? toHex(v) : v)),
      ];
      for (const text of shown) {
        for (const s of secrets) {
          assert.ok(!text.includes(s), `secret leaked in: ${text.slice(0, 80)}`);
          // Nor as the decimal byte list inspect prints for a Uint8Array.
          const decimal = [...fromHex(s).subarray(0, 8)].join(', ');
          assert.ok(!text.replace(/\s+/g, ' ').includes(decimal), `secret bytes leaked in: ${text.slice(0, 80)}`);
        }
      }
      assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(id)) as object).sort(), ['agreement_key', 'fingerprint', 'key_id', 'signing_key']);
      assert.match(inspect(id), /^Identity\([a-z2-9-]+\)$/);
    }
  });

  it('round-trips through its key file form', () => {
    const id = Identity.generate(seededRandom(seed + 2));
    const file = JSON.parse(JSON.stringify(id.exportSecret())) as unknown;
    const back = Identity.importSecret(file);
    assert.deepEqual(back.signingKey, id.signingKey);
    assert.deepEqual(back.agreementKey, id.agreementKey);
    assert.deepEqual(back.id, id.id);
    assert.equal(back.fingerprint, id.fingerprint);
    assert.deepEqual(back.exportSecret(), id.exportSecret());
    // Upper-case hex is still hex.
    const upper = id.exportSecret();
    assert.deepEqual(Identity.importSecret({ ...upper, ed25519_seed: upper.ed25519_seed.toUpperCase() }).signingKey, id.signingKey);
  });

  it('refuses key files that are not keys with KEY_FILE_INVALID', () => {
    const good = Identity.generate(seededRandom(seed + 3)).exportSecret();
    const bad: unknown[] = [
      null,
      undefined,
      0,
      'key',
      [],
      {},
      { ...good, version: 2 },
      { ...good, version: '1' },
      { version: 1, ed25519_seed: good.ed25519_seed },
      { ...good, ed25519_seed: 42 },
      { ...good, x25519_secret: null },
      { ...good, ed25519_seed: good.ed25519_seed.slice(2) }, // 31 bytes
      { ...good, ed25519_seed: `${good.ed25519_seed}00` }, // 33 bytes
      { ...good, x25519_secret: '' },
      { ...good, ed25519_seed: `${good.ed25519_seed.slice(1)}` }, // odd length
      { ...good, x25519_secret: `zz${good.x25519_secret.slice(2)}` },
      { ...good, ed25519_seed: ` ${good.ed25519_seed}` },
    ];
    for (const data of bad) {
      assert.throws(() => Identity.importSecret(data), isCode('KEY_FILE_INVALID'), JSON.stringify(data));
    }
    // Errors name the problem, never the secret.
    try {
      Identity.importSecret({ ...good, ed25519_seed: good.ed25519_seed.slice(2) });
    } catch (err) {
      assert.ok(!String((err as Error).message).includes(good.ed25519_seed.slice(2)));
      assert.ok(!inspect(err).includes(good.x25519_secret));
    }
  });

  it('refuses random key files with KEY_FILE_INVALID, never another error (property)', () => {
    const hexish = fc.oneof(fc.string(), fc.uint8Array({ maxLength: 40 }).map(toHex), fc.constant(''));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.record({ version: fc.oneof(fc.constant(1), fc.anything()), ed25519_seed: hexish, x25519_secret: hexish }),
        ),
        (data) => {
          try {
            Identity.importSecret(data);
          } catch (err) {
            assert.ok(err instanceof MeshError && err.code === 'KEY_FILE_INVALID', String(err));
            return;
          }
          // Only a well-formed file imports.
          const d = data as { version: unknown; ed25519_seed: string; x25519_secret: string };
          assert.equal(d.version, 1);
          assert.match(d.ed25519_seed, /^[0-9a-f]{64}$/i);
          assert.match(d.x25519_secret, /^[0-9a-f]{64}$/i);
        },
      ),
      { seed, numRuns: 1000 },
    );
  });

  it('refuses secrets of the wrong length at construction', () => {
    assert.throws(() => new Identity(new Uint8Array(31), new Uint8Array(32)), isCode('KEY_INVALID'));
    assert.throws(() => new Identity(new Uint8Array(32), new Uint8Array(33)), isCode('KEY_INVALID'));
  });

  it('keeps its own copy of the secrets it was given', () => {
    const seedBytes = seededRandom(seed + 4)(32);
    const secret = seededRandom(seed + 5)(32);
    const id = new Identity(seedBytes, secret);
    const before = id.exportSecret();
    seedBytes.fill(0);
    secret.fill(0);
    assert.deepEqual(id.exportSecret(), before);
  });
});
