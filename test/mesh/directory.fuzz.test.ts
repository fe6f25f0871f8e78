/**
 * Directory entries and gateway statements against hostile bytes (fast-check; the seed is
 * printed and FC_SEED=<seed> replays it): random bytes, every truncation of valid payloads,
 * one-bit flips at every position, and random edits (flip, set, cut, insert, delete). The
 * decoders must return a value that encodes back to the very same bytes, or throw MeshError
 * DIRECTORY_*; and a Directory fed such payloads in validly signed records never throws.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeDirectoryEntry,
  decodeGatewayStatement,
  Directory,
  DirectoryRole,
  directoryFeed,
  encodeDirectoryEntry,
  encodeGatewayStatement,
  type DirectoryEntry,
  type GatewayStatement,
} from '../../mesh/directory.ts';
import { MeshError } from '../../mesh/errors.ts';
import { Identity } from '../../mesh/identity.ts';
import { createRecord, RecordKind } from '../../mesh/record.ts';
import { seededRandom } from '../helpers/random.ts';
import { applyByteEdits, byteEdit, oneBitFlips } from '../helpers/byte-edits.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const random = seededRandom(seed);
const household = Identity.generate(random);
const member = Identity.generate(random);

const entries: DirectoryEntry[] = [
  { role: DirectoryRole.Household, signingKey: household.signingKey, agreementKey: household.agreementKey, name: 'rose' },
  { role: DirectoryRole.Member, signingKey: member.signingKey, agreementKey: member.agreementKey, name: 'alice' },
  { role: DirectoryRole.Device, signingKey: member.signingKey, agreementKey: member.agreementKey, name: 'a-very-long-device-name-of-32-ch' },
  { role: DirectoryRole.Vouch, signingKey: member.signingKey, agreementKey: member.agreementKey, name: 'x' },
];
const statements: GatewayStatement[] = [
  { peerKey: random(32), services: 1, domain: '', addrs: ['/ip4/127.0.0.1/tcp/4001'] },
  { peerKey: new Uint8Array(32), services: 2, domain: 'rose.example.org', addrs: [] },
  { peerKey: random(32), services: 7, domain: 'a.b', addrs: Array.from({ length: 8 }, (_, i) => `/dns4/gw${i}.example/tcp/${4000 + i}/ws`) },
];
const validEntries = entries.map(encodeDirectoryEntry);
const validStatements = statements.map(encodeGatewayStatement);
const valid = [...validEntries, ...validStatements];

/** Decodes with both decoders; each returns a canonical value or throws DIRECTORY_*. */
function judge(bytes: Uint8Array): void {
  try {
    const entry = decodeDirectoryEntry(bytes);
    assert.deepEqual(encodeDirectoryEntry(entry), bytes, 'a decoded entry encodes back to its bytes');
  } catch (err) {
    assert.ok(err instanceof MeshError, `decodeDirectoryEntry threw ${String(err)}`);
    assert.match(err.code, /^DIRECTORY_/);
  }
  try {
    const statement = decodeGatewayStatement(bytes);
    assert.deepEqual(encodeGatewayStatement(statement), bytes, 'a decoded statement encodes back to its bytes');
  } catch (err) {
    assert.ok(err instanceof MeshError, `decodeGatewayStatement threw ${String(err)}`);
    assert.match(err.code, /^DIRECTORY_/);
  }
}


describe('mesh/directory (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('every truncation and every one-bit flip of valid payloads: a canonical value or DIRECTORY_*', () => {
    let cases = 0;
    for (const bytes of valid) {
      for (let n = 0; n < bytes.length; n++, cases++) {
        const cut = bytes.subarray(0, n);
        judge(cut);
        assert.throws(() => (bytes[1] === DirectoryRole.Gateway ? decodeGatewayStatement(cut) : decodeDirectoryEntry(cut)), { name: 'MeshError' });
      }
      for (const { flipped } of oneBitFlips(bytes)) {
        cases++;
        judge(flipped);
      }
    }
    assert.ok(cases > 2000, `${cases} cases`);
  });

  it('random bytes and random edits of valid payloads: a canonical value or DIRECTORY_*', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          // Past the version and role bytes, with valid-looking lengths, to reach the deeper checks.
          fc.tuple(fc.nat({ max: 4 }), fc.uint8Array({ maxLength: 300 })).map(([role, rest]) => Uint8Array.from([1, role, ...rest])),
          fc.tuple(fc.constantFrom(...valid), fc.array(byteEdit, { minLength: 1, maxLength: 4 })).map(([b, edits]) => applyByteEdits(b, edits)),
        ),
        judge,
      ),
      { seed, numRuns: 4000 },
    );
  });

  it('a Directory fed mutated entries in validly signed records never throws, and keeps what it knew', () => {
    const feed = directoryFeed(household.signingKey);
    let seq = 1;
    const signed = (payload: Uint8Array) => createRecord({ kind: RecordKind.Directory, feed, seq: seq++, time: 1_790_000_000, payload, fullKey: true }, household);
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.array(byteEdit, { minLength: 1, maxLength: 3 }), (bytes, edits) => {
        const directory = new Directory();
        assert.equal(directory.apply(signed(validEntries[0]!), household.signingKey), true);
        const mutated = applyByteEdits(bytes, edits);
        const result = directory.apply(signed(mutated), household.signingKey);
        assert.equal(typeof result, 'boolean');
        // Whatever the mutated record said, the household is still known under its key id.
        assert.ok(directory.household(household.id), 'the household is still known');
      }),
      { seed, numRuns: 1500 },
    );
  });
});
