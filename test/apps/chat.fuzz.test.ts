/**
 * Sealed chat payloads against hostile bytes (fast-check; the seed is printed and
 * FC_SEED=<seed> replays it): random bytes, random JSON of every shape, and edits of valid
 * payloads. decodeChatPayload gives null or a well-formed payload that encodes back to a
 * payload decoding to the same value; it never throws.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeChatPayload, encodeChatPayload } from '../../apps/chat/chat.ts';
import { utf8 } from '../../mesh/bytes.ts';
import { oneBitFlips } from '../helpers/byte-edits.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);

const valid = [
  encodeChatPayload({ t: 'room', n: 'Garden', m: ['alice@rose', 'bob@lily'], k: '0123456789abcdef' }),
  encodeChatPayload({ t: 'msg', x: 'Tomatoes are ripe 🍅' }),
];

function judge(bytes: Uint8Array): void {
  const value = decodeChatPayload(bytes);
  if (value === null) return;
  if (value.t === 'room') {
    assert.ok(typeof value.n === 'string' && value.m.every((a) => typeof a === 'string') && /^[0-9a-f]{16}$/.test(value.k));
  } else {
    assert.equal(value.t, 'msg');
    assert.equal(typeof value.x, 'string');
  }
  assert.deepEqual(decodeChatPayload(encodeChatPayload(value)), value);
}

describe('apps/chat payloads (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('every truncation and every one-bit flip of valid payloads: null or a well-formed payload', () => {
    for (const bytes of valid) {
      for (let n = 0; n < bytes.length; n++) judge(bytes.subarray(0, n));
      for (const { flipped } of oneBitFlips(bytes)) {
        judge(flipped);
      }
    }
  });

  it('random bytes and random JSON (null, arrays, numbers, look-alike objects): null or well-formed, never a throw', () => {
    const lookAlike = fc.record(
      { t: fc.oneof(fc.constantFrom('room', 'msg'), fc.jsonValue()), n: fc.jsonValue(), m: fc.oneof(fc.array(fc.string()), fc.jsonValue()), k: fc.oneof(fc.stringMatching(/^[0-9a-f]{16}$/), fc.jsonValue()), x: fc.jsonValue() },
      { requiredKeys: ['t'] },
    );
    const json = fc.oneof(fc.jsonValue(), lookAlike).map((v) => Uint8Array.from([1, ...utf8(JSON.stringify(v) ?? 'null')]));
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), json), judge), { seed, numRuns: 4000 });
  });
});
