/**
 * The heard filter is bloom-filters' BloomFilter bit for bit (mesh/heard-filter.ts): its
 * xxHash64 against xxhashjs on keys of every length around the lane boundaries, and its
 * answers — false positives included — against the package's on the same ids.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type * as BloomFilters from 'bloom-filters';
import { ManualClock } from '../../mesh/clock.ts';
import { HeardFilter, xxh64Low32 } from '../../mesh/heard-filter.ts';
import { seededRandom } from '../helpers/random.ts';

const require = createRequire(import.meta.url);
const { BloomFilter } = require('bloom-filters') as typeof BloomFilters;
// The xxHash64 that bloom-filters itself loads.
const XXH = createRequire(require.resolve('bloom-filters'))('xxhashjs') as { h64(input: string, seed: number): { toNumber(): number } };

/** A seeded 64-bit id (the heard filter's ids are 64-bit short ids). */
function ids(seed: number, count: number): bigint[] {
  const random = seededRandom(seed);
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) out.push(Buffer.from(random(8)).readBigUInt64BE() >> BigInt(i % 64));
  return out;
}

describe('mesh/heard-filter', () => {
  it('hashes as xxhashjs does (low 32 bits, 32-bit seeds), short and long keys, ASCII and not', () => {
    const random = seededRandom(7);
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-é€';
    for (let len = 0; len <= 80; len++) {
      for (let k = 0; k < 8; k++) {
        let key = '';
        const bytes = random(len);
        for (let i = 0; i < len; i++) key += alphabet[bytes[i]! % (k < 6 ? 36 : alphabet.length)];
        for (const seed of [0, 1, 0x34567891, 0x34567892, 0xffffffff]) {
          assert.equal(xxh64Low32(key, seed), XXH.h64(key, seed).toNumber() >>> 0, `key ${JSON.stringify(key)} seed ${seed}`);
        }
      }
    }
  });

  it('answers as bloom-filters does, false positives included', () => {
    for (const [capacity, errorRate] of [
      [4096, 0.01],
      [100, 0.01],
      [50, 0.2],
    ] as const) {
      const clock = new ManualClock(0);
      const ours = new HeardFilter({ capacity, errorRate, maxAgeMs: 1e12 }, clock);
      const theirs = BloomFilter.create(capacity, errorRate);
      const added = ids(capacity, capacity);
      for (const id of added) {
        ours.add(id);
        theirs.add(id.toString(36));
      }
      let falsePositives = 0;
      for (const id of [...added, ...ids(capacity + 1, 20_000), 1n, 2n ** 64n - 1n]) {
        const expected = theirs.has(id.toString(36));
        assert.equal(ours.has(id), expected, `id ${id} (capacity ${capacity})`);
        if (expected && !added.includes(id)) falsePositives++;
      }
      assert.ok(falsePositives > 0, 'the comparison covers false positives');
    }
  });
});
