/**
 * PinSketch over GF(2^64): the field's laws, linearity (add twice removes, xor is the sketch
 * of the symmetric difference), the prefix property, serialisation, and decoding: random
 * sets within capacity come back exactly, sets over capacity decode to null. fast-check with
 * a printed seed (FC_SEED=<seed> replays a run).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MeshError } from '../../mesh/errors.ts';
import { fromWords, inv64, mul64, Sketch, sq64, toWords } from '../../mesh/sketch.ts';

const seed = Number(process.env.FC_SEED ?? 20261126);
const element = fc.bigInt({ min: 1n, max: (1n << 64n) - 1n });

function mul(a: bigint, b: bigint): bigint {
  const out = new Uint32Array(2);
  mul64(out, 0, ...toWords(a), ...toWords(b));
  return fromWords(out[0]!, out[1]!);
}

function square(a: bigint): bigint {
  const out = new Uint32Array(2);
  sq64(out, 0, ...toWords(a));
  return fromWords(out[0]!, out[1]!);
}

function inverse(a: bigint): bigint {
  const out = new Uint32Array(2);
  inv64(out, 0, ...toWords(a));
  return fromWords(out[0]!, out[1]!);
}

function sketchOf(elements: Iterable<bigint>, capacity: number): Sketch {
  const sketch = new Sketch(capacity);
  for (const x of elements) sketch.add(x);
  return sketch;
}

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof MeshError && err.code === code);
}

const sorted = (xs: bigint[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

describe('sketch: GF(2^64)', () => {
  before(() => console.log(`      fast-check seed ${seed}`));

  it('is a field: commutative, associative, distributive, with inverses', () => {
    fc.assert(
      fc.property(element, element, element, (a, b, c) => {
        assert.equal(mul(a, b), mul(b, a));
        assert.equal(mul(mul(a, b), c), mul(a, mul(b, c)));
        assert.equal(mul(a, b ^ c), mul(a, b) ^ mul(a, c));
        assert.equal(mul(a, inverse(a)), 1n);
        assert.equal(mul(a, 1n), a);
        assert.equal(square(a), mul(a, a));
      }),
      { seed, numRuns: 300 },
    );
  });

  it('has 2^64 elements: x^(2^64) = x (Frobenius), so the tower is a field of the right size', () => {
    fc.assert(
      fc.property(element, (a) => {
        let x = a;
        for (let i = 0; i < 64; i++) x = square(x);
        assert.equal(x, a);
      }),
      { seed, numRuns: 50 },
    );
  });
});

describe('sketch: PinSketch', () => {
  it('adding an element twice removes it; xor of two sketches is the sketch of the symmetric difference', () => {
    fc.assert(
      fc.property(fc.uniqueArray(element, { maxLength: 20 }), fc.uniqueArray(element, { maxLength: 20 }), fc.integer({ min: 1, max: 24 }), (a, b, c) => {
        const twice = sketchOf([...a, ...a], c);
        assert.ok(twice.isEmpty());
        const setB = new Set(b);
        const diff = a.filter((x) => !setB.has(x)).concat(b.filter((x) => !a.includes(x)));
        assert.deepEqual(sketchOf(a, c).xor(sketchOf(b, c)).syndromes, sketchOf(diff, c).syndromes);
      }),
      { seed, numRuns: 100 },
    );
  });

  it('a sketch of capacity c is a prefix of the sketch of capacity c′ > c', () => {
    fc.assert(
      fc.property(fc.uniqueArray(element, { maxLength: 30 }), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 20 }), (xs, c, extra) => {
        const small = sketchOf(xs, c);
        const large = sketchOf(xs, c + extra);
        assert.deepEqual(large.truncate(c).syndromes, small.syndromes);
        assert.deepEqual(large.serialize().subarray(0, 8 * c), small.serialize());
      }),
      { seed, numRuns: 100 },
    );
  });

  it('serialises to 8 big-endian bytes per syndrome and back', () => {
    fc.assert(
      fc.property(fc.uniqueArray(element, { maxLength: 10 }), fc.integer({ min: 0, max: 12 }), (xs, c) => {
        const sketch = sketchOf(xs, c);
        const bytes = sketch.serialize();
        assert.equal(bytes.length, 8 * c);
        assert.deepEqual(Sketch.deserialize(bytes).syndromes, sketch.syndromes);
      }),
      { seed, numRuns: 100 },
    );
    // s1 of {x} is x itself, big-endian.
    const x = 0x0102030405060708n;
    assert.deepEqual([...sketchOf([x], 1).serialize()], [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('decodes every set within its capacity exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 40 }), fc.infiniteStream(element), (c, size, stream) => {
        const n = Math.min(size, c);
        const xs = [...new Set([...stream.take(n)])];
        const decoded = sketchOf(xs, c).decode();
        assert.ok(decoded, `capacity ${c}, ${xs.length} elements`);
        assert.deepEqual(sorted(decoded), sorted(xs));
      }),
      { seed, numRuns: 150 },
    );
  });

  it('decodes a sketch over its capacity to null (with a spare syndrome, or at capacities ≥ 10), never to wrong ids', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 30 }), fc.integer({ min: 1, max: 20 }), fc.infiniteStream(element), (c, over, stream) => {
        const xs = [...new Set([...stream.take(c + over)])];
        // decode(c − 1): the last syndrome is a check.
        assert.equal(sketchOf(xs, c).decode(c - 1), null);
        if (c >= 10) assert.equal(sketchOf(xs, c).decode(), null);
      }),
      { seed, numRuns: 150 },
    );
  });

  it('decodes a full capacity-128 sketch within two seconds (about 0.4 s here)', function () {
    this.timeout(10_000);
    const xs: bigint[] = [];
    for (let i = 1n; xs.length < 128; i++) xs.push((i * 0x9e3779b97f4a7c15n) & ((1n << 64n) - 1n));
    const sketch = sketchOf(xs, 128);
    const started = performance.now();
    const decoded = sketch.decode();
    const ms = performance.now() - started;
    assert.deepEqual(sorted(decoded!), sorted(xs));
    assert.ok(ms < 2000, `${ms} ms`);
  });

  it('refuses bad input with SKETCH_* codes', () => {
    throwsCode(() => new Sketch(-1), 'SKETCH_CAPACITY');
    throwsCode(() => new Sketch(1.5), 'SKETCH_CAPACITY');
    throwsCode(() => new Sketch(100_000), 'SKETCH_CAPACITY');
    throwsCode(() => new Sketch(2).add(0n), 'SKETCH_ELEMENT');
    throwsCode(() => new Sketch(2).add(1n << 64n), 'SKETCH_ELEMENT');
    throwsCode(() => Sketch.deserialize(new Uint8Array(7)), 'SKETCH_MALFORMED');
    throwsCode(() => new Sketch(2).truncate(3), 'SKETCH_CAPACITY');
    assert.deepEqual(new Sketch(0).decode(), []);
    assert.deepEqual(new Sketch(5).decode(), []);
  });
});
