/**
 * Sync messages against hostile bytes, beyond the random mutations of sync-parts.test.ts
 * (fast-check; the seed is printed and FC_SEED=<seed> replays it): every truncation and
 * every one-bit flip of each message type (beacons with and without ask, large record
 * counts, WANTs of 1 and 64 ids), random edits, and WANT counts past the bytes that follow.
 * decodeSyncMessage gives a message whose fields have their documented sizes, or MeshError
 * SYNC_MALFORMED / SYNC_VERSION / SYNC_TYPE; a beacon that decodes from altered bytes never
 * verifies.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { equalBytes } from '../../mesh/bytes.ts';
import { nodeEd25519 } from '../../mesh/ed25519.ts';
import { MeshError } from '../../mesh/errors.ts';
import { Identity } from '../../mesh/identity.ts';
import {
  decodeSyncMessage,
  encodeBeacon,
  encodeReconcile,
  encodeRecordMessage,
  encodeWant,
  EVERYONE,
  MAX_WANT_IDS,
  SyncType,
  verifyBeacon,
} from '../../mesh/sync-messages.ts';
import { seededRandom } from '../helpers/random.ts';
import { applyByteEdits, byteEdit, oneBitFlips } from '../helpers/byte-edits.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const random = seededRandom(seed);
const household = Identity.generate(random);
const other = Identity.generate(random);

const beacons = [
  encodeBeacon(household, { time: 1_790_000_000, records: 0, gateway: false }),
  encodeBeacon(household, { time: 0xffffffff, records: Number.MAX_SAFE_INTEGER, gateway: true, ask: other.id }),
];
const valid = [
  ...beacons,
  encodeReconcile(household.id, other.id, 255, true, random(40), true),
  encodeReconcile(household.id, EVERYONE, 0, false, new Uint8Array(0)),
  encodeWant(household.id, other.id, [1n]),
  encodeWant(household.id, EVERYONE, Array.from({ length: MAX_WANT_IDS }, (_, i) => BigInt(i + 1) << 40n)),
  encodeRecordMessage(household.id, random(200)),
];

/** Decodes `bytes`; checks the result's shape or the error's code. */
function judge(bytes: Uint8Array, original?: Uint8Array): void {
  let message;
  try {
    message = decodeSyncMessage(bytes);
  } catch (err) {
    assert.ok(err instanceof MeshError, `threw ${String(err)}`);
    assert.match(err.code, /^SYNC_(MALFORMED|VERSION|TYPE)$/);
    return;
  }
  assert.equal(message.sender.length, 8);
  switch (message.type) {
    case SyncType.Beacon:
      assert.equal(message.signingKey.length, 32);
      assert.equal(message.signature.length, 64);
      assert.ok(message.ask === null || message.ask.length === 8);
      assert.ok(Number.isSafeInteger(message.records) && message.records >= 0);
      if (original && !equalBytes(bytes, original)) assert.equal(verifyBeacon(message, nodeEd25519), false, 'an altered beacon does not verify');
      break;
    case SyncType.Reconcile:
      assert.equal(message.target.length, 8);
      break;
    case SyncType.Want:
      assert.equal(message.target.length, 8);
      assert.ok(message.ids.length >= 1 && message.ids.length <= MAX_WANT_IDS);
      break;
    case SyncType.Record:
      assert.ok(message.record.length > 0);
      break;
    default:
      assert.fail(`unknown type ${(message as { type: unknown }).type}`);
  }
}

describe('mesh/sync-messages (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('every truncation and every one-bit flip of every message type', () => {
    let cases = 0;
    for (const bytes of valid) {
      for (let n = 0; n < bytes.length; n++, cases++) judge(bytes.subarray(0, n));
      for (const { bit, flipped } of oneBitFlips(bytes)) {
        cases++;
        // Verifying costs ~2 ms: one flipped bit per byte is checked against the signature.
        judge(flipped, (bit & 7) === ((bit >> 3) & 7) ? bytes : undefined);
      }
    }
    // Truncated beacons, WANTs and fixed headers are refused, not read past their end.
    for (const bytes of [...beacons, valid[4]!, valid[5]!]) {
      for (let n = 0; n < bytes.length; n++) assert.throws(() => decodeSyncMessage(bytes.subarray(0, n)), { name: 'MeshError' });
    }
    assert.ok(cases > 9000, `${cases} cases`);
  });

  it('random edits, and WANTs that promise more ids than follow', () => {
    const edited = fc.tuple(fc.nat(valid.length - 1), fc.array(byteEdit, { minLength: 1, maxLength: 4 })).map(([j, edits]) => ({ bytes: applyByteEdits(valid[j]!, edits), original: valid[j]! }));
    const want = fc.tuple(fc.nat({ max: 255 }), fc.uint8Array({ maxLength: 600 })).map(([count, rest]) => ({
      bytes: Uint8Array.from([0x13, ...household.id, ...other.id, count, ...rest]),
      original: undefined,
    }));
    fc.assert(fc.property(fc.oneof(edited, want), ({ bytes, original }) => judge(bytes, original)), { seed, numRuns: 4000 });
  });
});
