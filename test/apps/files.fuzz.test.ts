/**
 * File manifests against hostile bytes (fast-check; the seed is printed and FC_SEED=<seed>
 * replays it): random bytes, random JSON, look-alike manifests with wrong field types, huge
 * sizes and hostile names, and edits of valid manifests. decodeManifest gives null or a
 * manifest with every field of its type (a safe file name, hex ids, non-negative safe
 * integers); it never throws.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeManifest, encodeManifest } from '../../apps/files/files.ts';
import { utf8 } from '../../mesh/bytes.ts';
import { oneBitFlips } from '../helpers/byte-edits.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const hex = (n: number) => 'ab'.repeat(n / 2);
const manifest = { n: 'holiday.jpg', s: 123_456, c: 2, f: hex(16), d: hex(64), h: hex(64), w: null as string[] | null };
const valid = [encodeManifest(manifest), encodeManifest({ ...manifest, n: 'ünïcödé ✓.txt', w: ['alice@rose'] })];

function judge(bytes: Uint8Array): void {
  const m = decodeManifest(bytes);
  if (m === null) return;
  assert.ok(typeof m.n === 'string' && m.n.length > 0 && !/[\\/\u0000-\u001f]/.test(m.n), `file name ${JSON.stringify(m.n)}`);
  assert.ok(Number.isSafeInteger(m.s) && m.s >= 0 && Number.isSafeInteger(m.c) && m.c >= 0);
  assert.match(m.f, /^[0-9a-f]{16}$/);
  assert.match(m.d, /^[0-9a-f]{64}$/);
  assert.match(m.h, /^[0-9a-f]{64}$/);
  assert.ok(m.w === null || m.w.every((a) => typeof a === 'string'));
}

describe('apps/files manifests (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('every truncation and every one-bit flip of valid manifests: null or a well-formed manifest', () => {
    for (const bytes of valid) {
      assert.ok(decodeManifest(bytes));
      for (let n = 0; n < bytes.length; n++) judge(bytes.subarray(0, n));
      for (const { flipped } of oneBitFlips(bytes)) {
        judge(flipped);
      }
    }
  });

  it('random bytes, random JSON and look-alike manifests: null or well-formed, never a throw', () => {
    const field = <T>(good: fc.Arbitrary<T>) => fc.oneof(good, fc.jsonValue());
    const lookAlike = fc.record(
      {
        n: field(fc.oneof(fc.string(), fc.constantFrom('../../etc/passwd', '\u0000', '..', ' . ', 'a\\b', '\u202eexe.txt', 'x'.repeat(1000)))),
        s: field(fc.oneof(fc.nat(), fc.constantFrom(-1, 2 ** 53, 1e308, 0.5))),
        c: field(fc.oneof(fc.nat(), fc.constantFrom(-1, 2 ** 60))),
        f: field(fc.stringMatching(/^[0-9a-f]{16}$/)),
        d: field(fc.stringMatching(/^[0-9a-f]{64}$/)),
        h: field(fc.stringMatching(/^[0-9a-f]{64}$/)),
        w: field(fc.oneof(fc.constant(null), fc.array(fc.string()))),
      },
      { requiredKeys: [] },
    );
    const json = fc.oneof(fc.jsonValue(), lookAlike).map((v) => Uint8Array.from([1, ...utf8(JSON.stringify(v) ?? 'null')]));
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), json), judge), { seed, numRuns: 4000 });
  });
});
