/**
 * PinSketch: a BCH syndrome sketch of a set of 64-bit elements (the idea of Dodis et al.,
 * used by Minisketch; this is an independent implementation). A sketch of capacity c holds
 * the odd power sums s1, s3, …, s(2c−1) of its elements over GF(2^64); from them anyone can
 * recover a set of at most c elements. Because addition is xor, sketches are linear: the xor
 * of the sketches of A and B is the sketch of their symmetric difference, and adding an
 * element twice removes it. A sketch of capacity c is a prefix of the sketch of capacity
 * c' > c, so capacity can be raised later by sending only the missing syndromes.
 *
 * The field GF(2^64) is built as a tower, so that multiplication needs only 16-bit log/exp
 * tables and 32-bit integer arithmetic (no BigInt on the hot path):
 *
 *   GF(2^16) = GF(2)[t] / (t^16 + t^12 + t^3 + t + 1)        (primitive; log/exp tables)
 *   GF(2^32) = GF(2^16)[u] / (u^2 + u + λ)                    λ: least element of trace 1
 *   GF(2^64) = GF(2^32)[v] / (v^2 + v + λ·u)                  trace of λ·u is trace(λ) = 1
 *
 * u^2 + u + a is irreducible over GF(2^k) exactly when a has absolute trace 1, which makes
 * each step a field. A product costs nine table products (Karatsuba at both levels) and
 * measures 55–110 ns on the 2-core development machine; the tables (384 KiB) are the
 * bottleneck, and a tower over GF(2^8) with a 64 KiB product table measured the same.
 * Decoding c syndromes costs about 200·c² products: ~0.1 s at c = 64, ~0.4 s at c = 128. A 64-bit element x maps to the field as hi·v + lo with hi = x >> 32 and
 * lo = x mod 2^32, each 32-bit half as h·u + l with 16-bit halves. Element 0 cannot be in a
 * sketch (its power sums are all 0).
 *
 * Serialised sketch: the c syndromes in order s1, s3, …, each 8 bytes big-endian (hi word,
 * then lo word). Nothing else: capacity = length / 8.
 *
 * Decoding: power sums s(2k) = s(k)^2 complete the sequence s1..s(2c); Berlekamp–Massey
 * finds the shortest recurrence (the locator polynomial, degree L ≤ c); its reversal must
 * split into L distinct linear factors over GF(2^64) (checked: it must divide x^(2^64) − x),
 * and Berlekamp's trace algorithm finds the roots, which are the elements. A sketch holding
 * more than c elements decodes to null except with a small probability (for capacity c about
 * 1/c!, the chance that a random degree-c polynomial splits). To make wrong answers
 * negligible, decode with `maxElements` below the capacity: each spare syndrome checks the
 * result (about 2^-64 each), or check the result against other data (counts, checksums), as
 * reconcile.ts does.
 */
import { MeshError } from './errors.ts';

const GF16_ORDER = 0xffff;
const GF16_POLY = 0x1100b;

/** exp table doubled in length so that EXP[LOG[a] + LOG[b]] needs no reduction. */
const EXP = new Uint16Array(2 * GF16_ORDER + 1);
const LOG = new Uint16Array(GF16_ORDER + 1);
{
  let x = 1;
  for (let i = 0; i < GF16_ORDER; i++) {
    EXP[i] = x;
    EXP[i + GF16_ORDER] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x10000) x ^= GF16_POLY;
  }
  EXP[2 * GF16_ORDER] = EXP[0]!;
}

function mul16(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!;
}

function sq16(a: number): number {
  return a === 0 ? 0 : EXP[2 * LOG[a]!]!;
}

function inv16(a: number): number {
  return EXP[GF16_ORDER - LOG[a]!]!;
}

/** Absolute trace GF(2^16) → GF(2): a + a^2 + a^4 + … + a^(2^15). */
function trace16(a: number): number {
  let t = 0;
  let x = a;
  for (let i = 0; i < 16; i++) {
    t ^= x;
    x = sq16(x);
  }
  return t;
}

/** λ: the least element of GF(2^16) with trace 1 (derived once; a constant). */
const LAMBDA = (() => {
  for (let a = 1; ; a++) if (trace16(a) === 1) return a;
})();
const LOG_LAMBDA = LOG[LAMBDA]!;
/** log(λ·λ): multiplying by μ = λ·u needs λ and λ^2. */
const LOG_LAMBDA2 = (2 * LOG_LAMBDA) % GF16_ORDER;

function mulLambda(a: number): number {
  return a === 0 ? 0 : EXP[LOG[a]! + LOG_LAMBDA]!;
}

function mulLambda2(a: number): number {
  return a === 0 ? 0 : EXP[LOG[a]! + LOG_LAMBDA2]!;
}

/** GF(2^32): (a1·u + a0)(b1·u + b0) with u^2 = u + λ, Karatsuba (3 products). */
function mul32(a: number, b: number): number {
  const a1 = a >>> 16;
  const a0 = a & 0xffff;
  const b1 = b >>> 16;
  const b0 = b & 0xffff;
  const low = mul16(a0, b0);
  const high = mul16(a1, b1);
  const mid = mul16(a1 ^ a0, b1 ^ b0);
  return (((mid ^ low) << 16) | (low ^ mulLambda(high))) >>> 0;
}

function sq32(a: number): number {
  const h = sq16(a >>> 16);
  return ((h << 16) | (sq16(a & 0xffff) ^ mulLambda(h))) >>> 0;
}

/** Multiply by μ = λ·u: λu(x1·u + x0) = λ(x1 + x0)·u + λ^2·x1. */
function mulMu(x: number): number {
  const x1 = x >>> 16;
  const x0 = x & 0xffff;
  return ((mulLambda(x1 ^ x0) << 16) | mulLambda2(x1)) >>> 0;
}

function inv32(a: number): number {
  const a1 = a >>> 16;
  const a0 = a & 0xffff;
  // Norm a·ā, with ā = a1·u + (a0 + a1) the conjugate.
  const norm = mulLambda(sq16(a1)) ^ sq16(a0) ^ mul16(a0, a1);
  const n = inv16(norm);
  return ((mul16(a1, n) << 16) | mul16(a0 ^ a1, n)) >>> 0;
}

/**
 * Arithmetic in GF(2^64). An element is a pair of 32-bit words (hi, lo); results are written
 * into `out[o]`, `out[o + 1]` so that the hot loops allocate nothing.
 */
export function mul64(out: Uint32Array, o: number, ah: number, al: number, bh: number, bl: number): void {
  const low = mul32(al, bl);
  const high = mul32(ah, bh);
  const mid = mul32(ah ^ al, bh ^ bl);
  out[o] = mid ^ low;
  out[o + 1] = low ^ mulMu(high);
}

export function sq64(out: Uint32Array, o: number, ah: number, al: number): void {
  const h = sq32(ah);
  out[o] = h;
  out[o + 1] = sq32(al) ^ mulMu(h);
}

/** Inverse of a non-zero element. */
export function inv64(out: Uint32Array, o: number, ah: number, al: number): void {
  // Conjugate ā = ah·v + (al + ah); norm a·ā = μ·ah^2 + al^2 + al·ah lies in GF(2^32).
  const norm = mulMu(sq32(ah)) ^ sq32(al) ^ mul32(al, ah);
  const n = inv32(norm >>> 0);
  out[o] = mul32(ah, n);
  out[o + 1] = mul32((al ^ ah) >>> 0, n);
}

const MASK32 = 0xffffffffn;

/** Split a 64-bit element into its (hi, lo) words. */
export function toWords(x: bigint): [number, number] {
  return [Number((x >> 32n) & MASK32), Number(x & MASK32)];
}

export function fromWords(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Largest capacity a sketch may have: bounds memory and decoding time (about c^2·64 products). */
export const MAX_SKETCH_CAPACITY = 256;

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 0 || capacity > MAX_SKETCH_CAPACITY) {
    throw new MeshError('SKETCH_CAPACITY', `sketch capacity must be an integer in 0..${MAX_SKETCH_CAPACITY}, got ${capacity}`);
  }
}

const ELEMENT_MAX = (1n << 64n) - 1n;

/** A PinSketch of capacity `capacity` over GF(2^64). */
export class Sketch {
  /** Syndromes s1, s3, …: word pairs (hi, lo). */
  readonly syndromes: Uint32Array;

  constructor(readonly capacity: number) {
    checkCapacity(capacity);
    this.syndromes = new Uint32Array(2 * capacity);
  }

  /** Toggle an element (1 ≤ x < 2^64): adding it twice removes it. */
  add(x: bigint): this {
    if (typeof x !== 'bigint' || x <= 0n || x > ELEMENT_MAX) {
      throw new MeshError('SKETCH_ELEMENT', 'sketch elements are integers in 1..2^64-1');
    }
    const [hi, lo] = toWords(x);
    addPowerSums(this.syndromes, 0, this.capacity, hi, lo);
    return this;
  }

  /** Xor another sketch into this one (the sketch of the symmetric difference); uses the common prefix. */
  xor(other: Sketch): this {
    const n = 2 * Math.min(this.capacity, other.capacity);
    for (let i = 0; i < n; i++) this.syndromes[i]! ^= other.syndromes[i]!;
    return this;
  }

  /** The sketch of the same set with a smaller capacity: the first `capacity` syndromes. */
  truncate(capacity: number): Sketch {
    checkCapacity(capacity);
    if (capacity > this.capacity) throw new MeshError('SKETCH_CAPACITY', 'cannot truncate a sketch to a larger capacity');
    const out = new Sketch(capacity);
    out.syndromes.set(this.syndromes.subarray(0, 2 * capacity));
    return out;
  }

  isEmpty(): boolean {
    return this.syndromes.every((w) => w === 0);
  }

  /** 8 bytes per syndrome, big-endian. */
  serialize(): Uint8Array {
    const out = new Uint8Array(8 * this.capacity);
    const view = new DataView(out.buffer);
    for (let i = 0; i < 2 * this.capacity; i++) view.setUint32(4 * i, this.syndromes[i]!);
    return out;
  }

  static deserialize(bytes: Uint8Array): Sketch {
    if (bytes.length % 8 !== 0) throw new MeshError('SKETCH_MALFORMED', `a sketch is a multiple of 8 bytes, got ${bytes.length}`);
    const sketch = new Sketch(bytes.length / 8);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < 2 * sketch.capacity; i++) sketch.syndromes[i] = view.getUint32(4 * i);
    return sketch;
  }

  /**
   * The elements, or null when the sketch holds more than `maxElements` (default: the
   * capacity) or cannot be decoded. See the file header for the chance of a wrong answer.
   * `admissible`, if given, is asked about the number of elements before the (costly) root
   * finding: a caller who knows, say, the parity of the count saves work on hopeless sketches.
   */
  decode(maxElements = this.capacity, admissible?: (count: number) => boolean): bigint[] | null {
    return decodeSyndromes(this.syndromes, this.capacity, Math.min(maxElements, this.capacity), admissible);
  }
}

/**
 * Xor the odd powers x^(2·from+1), …, x^(2·to−1) of x = (hi, lo) into syndromes[from..to).
 * `syndromes` is laid out as (hi, lo) pairs starting at index 0 for s1.
 */
export function addPowerSums(syndromes: Uint32Array, from: number, to: number, hi: number, lo: number): void {
  if (to <= from) return;
  const t = new Uint32Array(4); // [x^2 | current power]
  sq64(t, 0, hi, lo);
  const x2h = t[0]!;
  const x2l = t[1]!;
  powOdd(t, 2, hi, lo, x2h, x2l, from);
  for (let j = from; j < to; j++) {
    syndromes[2 * j]! ^= t[2]!;
    syndromes[2 * j + 1]! ^= t[3]!;
    mul64(t, 2, t[2]!, t[3]!, x2h, x2l);
  }
}

/** out[o..] = x · (x^2)^k = x^(2k+1), by square-and-multiply. */
function powOdd(out: Uint32Array, o: number, hi: number, lo: number, x2h: number, x2l: number, k: number): void {
  let rh = hi;
  let rl = lo;
  let bh = x2h;
  let bl = x2l;
  const t = new Uint32Array(2);
  while (k > 0) {
    if (k & 1) {
      mul64(t, 0, rh, rl, bh, bl);
      rh = t[0]!;
      rl = t[1]!;
    }
    k >>>= 1;
    if (k > 0) {
      sq64(t, 0, bh, bl);
      bh = t[0]!;
      bl = t[1]!;
    }
  }
  out[o] = rh;
  out[o + 1] = rl;
}

// ---------------------------------------------------------------------------------------
// Decoding. Polynomials are Uint32Arrays of (hi, lo) coefficient pairs, constant term first.

type Poly = Uint32Array;

function degree(p: Poly): number {
  for (let i = p.length / 2 - 1; i >= 0; i--) if (p[2 * i] !== 0 || p[2 * i + 1] !== 0) return i;
  return -1;
}

function trim(p: Poly): Poly {
  return p.slice(0, 2 * (degree(p) + 1));
}

/** Decode syndromes (s1, s3, … as word pairs) of a sketch with `capacity`; see Sketch.decode. */
function decodeSyndromes(syndromes: Uint32Array, capacity: number, maxElements: number, admissible?: (count: number) => boolean): bigint[] | null {
  const sums = powerSums(syndromes, capacity);
  const { locator, L } = berlekampMassey(sums, 2 * capacity);
  if (L > maxElements || (admissible && !admissible(L))) return null;
  if (L === 0) return []; // all power sums 0: the empty set
  // Reversal x^L·C(1/x) is monic with the elements as roots; C beyond its degree is 0.
  const f = new Uint32Array(2 * (L + 1));
  for (let i = 0; i <= L; i++) {
    f[2 * i] = locator[2 * (L - i)] ?? 0;
    f[2 * i + 1] = locator[2 * (L - i) + 1] ?? 0;
  }
  if (f[0] === 0 && f[1] === 0) return null; // root 0 is never an element
  if (!splitsDistinct(f)) return null;
  const roots: bigint[] = [];
  if (!findRoots(f, roots, { state: 0x9e3779b9 })) return null;
  if (roots.length !== L) return null;
  return roots;
}

/** s1..s(2c) as word pairs at indices 0..; even sums are squares: s(2k) = s(k)^2. */
function powerSums(syndromes: Uint32Array, capacity: number): Uint32Array {
  const n = 2 * capacity;
  const sums = new Uint32Array(2 * n);
  for (let k = 1; k <= n; k++) {
    const o = 2 * (k - 1);
    if (k % 2 === 1) {
      const j = (k - 1) / 2;
      sums[o] = syndromes[2 * j]!;
      sums[o + 1] = syndromes[2 * j + 1]!;
    } else {
      const h = 2 * (k / 2 - 1);
      sq64(sums, o, sums[h]!, sums[h + 1]!);
    }
  }
  return sums;
}

/** Berlekamp–Massey over GF(2^64): the connection polynomial C (C(0) = 1) of the sequence. */
function berlekampMassey(seq: Uint32Array, n: number): { locator: Poly; L: number } {
  const C = new Uint32Array(2 * (n + 1));
  let B = new Uint32Array(2 * (n + 1));
  C[1] = 1;
  B[1] = 1;
  let L = 0;
  let m = 1;
  let bh = 0;
  let bl = 1;
  const t = new Uint32Array(2);
  for (let i = 0; i < n; i++) {
    // Discrepancy d = s_i + Σ C_j s_(i−j).
    let dh = seq[2 * i]!;
    let dl = seq[2 * i + 1]!;
    for (let j = 1; j <= L; j++) {
      const ch = C[2 * j]!;
      const cl = C[2 * j + 1]!;
      if (ch === 0 && cl === 0) continue;
      mul64(t, 0, ch, cl, seq[2 * (i - j)]!, seq[2 * (i - j) + 1]!);
      dh ^= t[0]!;
      dl ^= t[1]!;
    }
    if (dh === 0 && dl === 0) {
      m++;
      continue;
    }
    inv64(t, 0, bh, bl);
    mul64(t, 0, dh, dl, t[0]!, t[1]!);
    const fh = t[0]!;
    const fl = t[1]!;
    const previous = 2 * L <= i ? C.slice() : null;
    for (let j = 0; j + m <= n; j++) {
      const xh = B[2 * j]!;
      const xl = B[2 * j + 1]!;
      if (xh === 0 && xl === 0) continue;
      mul64(t, 0, fh, fl, xh, xl);
      C[2 * (j + m)]! ^= t[0]!;
      C[2 * (j + m) + 1]! ^= t[1]!;
    }
    if (previous) {
      L = i + 1 - L;
      B = previous;
      bh = dh;
      bl = dl;
      m = 1;
    } else {
      m++;
    }
  }
  return { locator: C, L };
}

/** r mod f for monic f, in place on r (length ≥ f's); returns r trimmed to degree < deg f. */
function reduce(r: Poly, f: Poly): Poly {
  const df = degree(f);
  const t = new Uint32Array(2);
  for (let k = r.length / 2 - 1; k >= df; k--) {
    const ch = r[2 * k]!;
    const cl = r[2 * k + 1]!;
    if (ch === 0 && cl === 0) continue;
    for (let i = 0; i < df; i++) {
      const fh = f[2 * i]!;
      const fl = f[2 * i + 1]!;
      if (fh === 0 && fl === 0) continue;
      mul64(t, 0, ch, cl, fh, fl);
      r[2 * (k - df + i)]! ^= t[0]!;
      r[2 * (k - df + i) + 1]! ^= t[1]!;
    }
    r[2 * k] = 0;
    r[2 * k + 1] = 0;
  }
  return r.slice(0, 2 * df);
}

/** p^2 mod f, with p of degree < deg f. Squaring is additive in characteristic 2. */
function squareMod(p: Poly, f: Poly): Poly {
  const n = p.length / 2;
  const r = new Uint32Array(2 * Math.max(2 * n - 1, 1));
  for (let i = 0; i < n; i++) sq64(r, 4 * i, p[2 * i]!, p[2 * i + 1]!);
  return reduce(r, f);
}

/** True when monic f divides x^(2^64) − x, i.e. has deg f distinct roots in GF(2^64). */
function splitsDistinct(f: Poly): boolean {
  const df = degree(f);
  let p: Poly = new Uint32Array(2 * Math.max(df, 2));
  p[3] = 1; // x
  p = reduce(p, f);
  const x = p.slice();
  for (let i = 0; i < 64; i++) p = squareMod(p, f);
  for (let i = 0; i < p.length; i++) if (p[i] !== x[i]) return false;
  return true;
}

/** Monic gcd of two polynomials. */
function gcd(a: Poly, b: Poly): Poly {
  let x = trim(a);
  let y = trim(b);
  while (degree(y) >= 0) {
    const r = reduce(x.slice(), makeMonic(y));
    x = y;
    y = trim(r);
  }
  return makeMonic(x);
}

function makeMonic(p: Poly): Poly {
  const d = degree(p);
  const out = p.slice(0, 2 * (d + 1));
  const t = new Uint32Array(2);
  inv64(t, 0, p[2 * d]!, p[2 * d + 1]!);
  const ih = t[0]!;
  const il = t[1]!;
  for (let i = 0; i <= d; i++) mul64(out, 2 * i, out[2 * i]!, out[2 * i + 1]!, ih, il);
  return out;
}

/** Quotient f / g for monic g dividing f exactly. */
function divide(f: Poly, g: Poly): Poly {
  const df = degree(f);
  const dg = degree(g);
  const r = f.slice();
  const q = new Uint32Array(2 * (df - dg + 1));
  const t = new Uint32Array(2);
  for (let k = df; k >= dg; k--) {
    const ch = r[2 * k]!;
    const cl = r[2 * k + 1]!;
    q[2 * (k - dg)] = ch;
    q[2 * (k - dg) + 1] = cl;
    if (ch === 0 && cl === 0) continue;
    for (let i = 0; i <= dg; i++) {
      mul64(t, 0, ch, cl, g[2 * i]!, g[2 * i + 1]!);
      r[2 * (k - dg + i)]! ^= t[0]!;
      r[2 * (k - dg + i) + 1]! ^= t[1]!;
    }
  }
  return q;
}

/** A deterministic xorshift for choosing the trace algorithm's β (decoding stays reproducible). */
function nextWord(rng: { state: number }): number {
  let s = rng.state;
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  rng.state = s >>> 0;
  return rng.state;
}

/**
 * Berlekamp's trace algorithm: for monic f with distinct roots in GF(2^64), gcd(f, Tr(β·x))
 * splits f for a random β with probability ≥ 1/2. Pushes the roots; false if it gives up.
 */
function findRoots(f: Poly, roots: bigint[], rng: { state: number }): boolean {
  const df = degree(f);
  if (df === 0) return true;
  if (df === 1) {
    roots.push(fromWords(f[0]!, f[1]!)); // x + c: root c
    return true;
  }
  for (let attempt = 0; attempt < 64; attempt++) {
    // t = Σ_{i<64} (βx)^(2^i) mod f
    let p: Poly = new Uint32Array(2 * Math.max(df, 2));
    p[2] = nextWord(rng);
    p[3] = nextWord(rng);
    p = reduce(p, f);
    const acc = p.slice();
    for (let i = 1; i < 64; i++) {
      p = squareMod(p, f);
      for (let k = 0; k < acc.length; k++) acc[k]! ^= p[k]!;
    }
    if (degree(acc) <= 0) continue;
    const g = gcd(f, acc);
    const dg = degree(g);
    if (dg <= 0 || dg >= df) continue;
    return findRoots(g, roots, rng) && findRoots(divide(f, g), roots, rng);
  }
  return false;
}
