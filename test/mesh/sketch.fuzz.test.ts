/**
 * PinSketches from hostile bytes (fast-check; the seed is printed and FC_SEED=<seed>
 * replays it): `Sketch.deserialize` of any bytes gives a sketch or a SKETCH_* MeshError, and
 * `decode` of any sketch — random syndromes, or the sketch of a real set with bits flipped —
 * gives null or a set that really has those syndromes: distinct elements in 1..2^64−1, no
 * more than asked for. Never a crash and never a set the sketch does not describe.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MeshError } from '../../mesh/errors.ts';
import { MAX_SKETCH_CAPACITY, Sketch } from '../../mesh/sketch.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);

/** Checks one decode of `sketch`; returns what it decoded to, for the tallies. */
function judge(sketch: Sketch, maxElements: number): 'null' | 'set' {
  const elements = sketch.decode(maxElements);
  if (elements === null) return 'null';
  assert.ok(elements.length <= Math.min(maxElements, sketch.capacity), `${elements.length} elements from a sketch asked for at most ${maxElements}`);
  assert.equal(new Set(elements).size, elements.length, 'the elements are distinct');
  const again = new Sketch(sketch.capacity);
  for (const x of elements) {
    assert.ok(typeof x === 'bigint' && x >= 1n && x < 1n << 64n, `element ${x} out of range`);
    again.add(x);
  }
  assert.deepEqual(again.syndromes, sketch.syndromes, 'the decoded set has the sketch it was decoded from');
  return 'set';
}

describe('mesh/sketch (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('deserializes any bytes to a sketch of length/8 syndromes, or throws SKETCH_*', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.nat({ max: 2 * 8 * MAX_SKETCH_CAPACITY + 16 }).map((n) => new Uint8Array(n))), (bytes) => {
        let sketch: Sketch;
        try {
          sketch = Sketch.deserialize(bytes);
        } catch (err) {
          assert.ok(err instanceof MeshError, `threw ${String(err)}`);
          assert.match(err.code, /^SKETCH_(MALFORMED|CAPACITY)$/);
          assert.ok(bytes.length % 8 !== 0 || bytes.length > 8 * MAX_SKETCH_CAPACITY, `refused ${bytes.length} bytes`);
          return;
        }
        assert.equal(sketch.capacity, bytes.length / 8);
        assert.deepEqual(sketch.serialize(), bytes);
      }),
      { seed, numRuns: 2000 },
    );
  });

  it('decodes random syndromes to null or to a set with exactly those syndromes', function () {
    this.timeout(20_000);
    const outcomes = { null: 0, set: 0 };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 24 }).chain((c) => fc.tuple(fc.uint8Array({ minLength: 8 * c, maxLength: 8 * c }), fc.integer({ min: 0, max: c + 2 }))), ([bytes, max]) => {
        outcomes[judge(Sketch.deserialize(bytes), max)]++;
      }),
      { seed, numRuns: 2000 },
    );
    console.log(`      ${outcomes.null} null, ${outcomes.set} sets`);
  });

  it('decodes sketches of real sets with a few bits flipped to null or to a set with exactly those syndromes', function () {
    this.timeout(20_000);
    const outcomes = { null: 0, set: 0 };
    const element = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.array(element, { maxLength: 24 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        (capacity, set, flips) => {
          const sketch = new Sketch(capacity);
          for (const x of new Set(set)) sketch.add(x);
          const bytes = sketch.serialize();
          for (const f of flips) bytes[(f >> 3) % bytes.length]! ^= 1 << (f & 7);
          outcomes[judge(Sketch.deserialize(bytes), capacity)]++;
        },
      ),
      { seed, numRuns: 2000 },
    );
    console.log(`      ${outcomes.null} null, ${outcomes.set} sets`);
    assert.ok(outcomes.set > 0 && outcomes.null > 0);
  });
});
