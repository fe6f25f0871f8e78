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

/**
 * A plain reference of the field and of sketches, written from the definitions in the
 * header of mesh/sketch.ts with no tables: GF(2^16) by shift-and-add modulo the polynomial,
 * the tower levels by schoolbook products (no Karatsuba), syndromes by repeated products.
 */
const ref = (() => {
  const mul16 = (a: number, b: number): number => {
    let r = 0;
    for (let i = 15; i >= 0; i--) {
      r <<= 1;
      if (r & 0x10000) r ^= 0x1100b;
      if ((b >>> i) & 1) r ^= a;
    }
    return r;
  };
  const trace16 = (a: number): number => {
    let t = 0;
    for (let i = 0, x = a; i < 16; i++, x = mul16(x, x)) t ^= x;
    return t;
  };
  let lambda = 1;
  while (trace16(lambda) !== 1) lambda++;
  // (a1·u + a0)(b1·u + b0) = a1b1·u^2 + (a1b0 + a0b1)·u + a0b0, u^2 = u + λ.
  const mul32 = (a: number, b: number): number => {
    const [a1, a0, b1, b0] = [a >>> 16, a & 0xffff, b >>> 16, b & 0xffff];
    const hh = mul16(a1, b1);
    const hi = hh ^ mul16(a1, b0) ^ mul16(a0, b1);
    const lo = mul16(a0, b0) ^ mul16(hh, lambda);
    return ((hi << 16) | lo) >>> 0;
  };
  const mu = (lambda << 16) >>> 0; // λ·u
  // (ah·v + al)(bh·v + bl), v^2 = v + μ.
  const mul = (a: bigint, b: bigint): bigint => {
    const [ah, al, bh, bl] = [Number(a >> 32n), Number(a & 0xffffffffn), Number(b >> 32n), Number(b & 0xffffffffn)];
    const hh = mul32(ah, bh);
    const hi = hh ^ mul32(ah, bl) ^ mul32(al, bh);
    const lo = mul32(al, bl) ^ mul32(hh, mu);
    return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  };
  const syndromes = (xs: bigint[], capacity: number): bigint[] => {
    const s = new Array<bigint>(capacity).fill(0n);
    for (const x of xs) {
      const x2 = mul(x, x);
      let p = x;
      for (let j = 0; j < capacity; j++, p = mul(p, x2)) s[j] ^= p;
    }
    return s;
  };
  return { mul, syndromes };
})();

describe('sketch: against a plain reference', () => {
  it('multiplies and squares like the schoolbook tower', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (a, b) => {
        assert.equal(mul(a, b), ref.mul(a, b));
        assert.equal(square(a), ref.mul(a, a));
      }),
      { seed, numRuns: 500 },
    );
    // Sparse elements: zero 16-bit parts take the branch-free zero path of the log tables.
    for (const a of [0n, 1n, 0x10000n, 1n << 32n, 1n << 48n, 0xffffn << 16n, (1n << 64n) - 1n]) {
      for (const b of [0n, 1n, 2n, 0x10001n, 1n << 63n, 0xffff0000ffffn]) assert.equal(mul(a, b), ref.mul(a, b), `${a} · ${b}`);
    }
  });

  it('builds the same syndromes as the definition, element by element, for random sets', () => {
    fc.assert(
      fc.property(fc.uniqueArray(element, { maxLength: 40 }), fc.integer({ min: 0, max: 70 }), (xs, c) => {
        const sketch = sketchOf(xs, c);
        const expected = ref.syndromes(xs, c);
        for (let j = 0; j < c; j++) assert.equal(fromWords(sketch.syndromes[2 * j]!, sketch.syndromes[2 * j + 1]!), expected[j], `s${2 * j + 1}`);
      }),
      { seed, numRuns: 100 },
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
    // Pinned bytes (computed by the first, table-light implementation): optimisations of the
    // field must not change a byte on the wire.
    const pinned = new Sketch(6);
    for (let i = 1n; i <= 5n; i++) pinned.add((i * 0x9e3779b97f4a7c15n) & ((1n << 64n) - 1n));
    assert.equal(
      Buffer.from(pinned.serialize()).toString('hex'),
      '1737619d7d5c6c3d187981e6a52cbb41ed3286eb3392c681faf54c37bc3ab30a10b81ba8882a1350cb400f25cc60d2bd',
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

  it('decodes a full capacity-128 sketch within two seconds (about 40 ms here)', function () {
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
