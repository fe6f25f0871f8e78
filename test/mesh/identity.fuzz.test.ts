/**
 * Key files read from disk against hostile content (fast-check; the seed is printed and
 * FC_SEED=<seed> replays it): random JSON, look-alike key files with wrong types, odd-length
 * or non-hex strings, keys one byte short or long, and edits of a real key file's text.
 * Identity.importSecret gives the identity (the same one, for an unchanged file) or MeshError
 * KEY_FILE_INVALID; nothing else.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { toHex } from '../../mesh/bytes.ts';
import { MeshError } from '../../mesh/errors.ts';
import { Identity } from '../../mesh/identity.ts';
import { seededRandom } from '../helpers/random.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const identity = Identity.generate(seededRandom(seed));
const exported = identity.exportSecret() as { version: number; ed25519_seed: string; x25519_secret: string };

function judge(data: unknown): void {
  let imported: Identity;
  try {
    imported = Identity.importSecret(data);
  } catch (err) {
    assert.ok(err instanceof MeshError, `threw ${String(err)}`);
    assert.equal(err.code, 'KEY_FILE_INVALID');
    return;
  }
  assert.equal(imported.signingKey.length, 32);
  assert.equal(imported.agreementKey.length, 32);
}

describe('mesh/identity key files (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('a real key file imports to the same identity', () => {
    assert.equal(toHex(Identity.importSecret(JSON.parse(JSON.stringify(exported))).id), toHex(identity.id));
  });

  it('random JSON, look-alike key files and edited key-file text: an identity or KEY_FILE_INVALID', () => {
    const hexish = fc.oneof(
      fc.stringMatching(/^[0-9a-fA-F]{0,70}$/),
      fc.constantFrom(exported.ed25519_seed.slice(1), `${exported.ed25519_seed}0`, `${exported.ed25519_seed}00`, exported.ed25519_seed.replace(/.$/, 'g'), ''),
      fc.jsonValue(),
    );
    const lookAlike = fc.record({ version: fc.oneof(fc.constant(1), fc.jsonValue()), ed25519_seed: hexish, x25519_secret: hexish }, { requiredKeys: [] });
    const text = JSON.stringify(exported);
    const editedText = fc.tuple(fc.nat(text.length - 1), fc.string({ maxLength: 3 }), fc.nat({ max: 3 })).map(([at, insert, cut]) => {
      try {
        return JSON.parse(text.slice(0, at) + insert + text.slice(at + cut)) as unknown;
      } catch {
        return null; // not JSON: the caller says FILE_CORRUPT before it gets here
      }
    });
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), lookAlike, editedText), judge), { seed, numRuns: 3000 });
  });
});
