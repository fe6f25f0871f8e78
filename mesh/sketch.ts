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
 * each step a field. A product is nine GF(2^16) products (Karatsuba at both levels); with
 * the logs of both factors' 16-bit parts at hand ("prepared", nine logs per element) it is
 * ten exp-table lookups and no branch, and loops that multiply by the same element many
 * times prepare it once. Squaring is linear over GF(2) and uses a 16 KiB table of the
 * squares of bytes. A 64-bit element x maps to the field as hi·v + lo with hi = x >> 32 and
 * lo = x mod 2^32, each 32-bit half as h·u + l with 16-bit halves. Element 0 cannot be in a
 * sketch (its power sums are all 0).
 *
 * Serialised sketch: the c syndromes in order s1, s3, …, each 8 bytes big-endian (hi word,
 * then lo word). Nothing else: capacity = length / 8.
 *
 * Decoding: power sums s(2k) = s(k)^2 complete the sequence s1..s(2c); Berlekamp–Massey
 * finds the shortest recurrence (the locator polynomial, degree L ≤ c); its reversal must
 * split into L distinct linear factors over GF(2^64) (checked: it must divide x^(2^64) − x),
 * and Berlekamp's trace algorithm finds the roots, which are the elements. The powers
 * x^(2^k) mod f computed by the check are kept: the trace polynomials of root finding are
 * linear combinations of them. Squaring mod f uses a table of x^(2i) mod f (half the products
 * of square-then-reduce). Decoding c syndromes costs about 36·c² products: ~13 ms at c = 64,
 * ~45 ms at c = 128 on the 2-core development machine. A sketch holding
 * more than c elements decodes to null except with a small probability (for capacity c about
 * 1/c!, the chance that a random degree-c polynomial splits). To make wrong answers
 * negligible, decode with `maxElements` below the capacity: each spare syndrome checks the
 * result (about 2^-64 each), or check the result against other data (counts, checksums), as
 * reconcile.ts does.
 */
import { MeshError } from './errors.ts';

const GF16_ORDER = 0xffff;
const GF16_POLY = 0x1100b;

/**
 * Log and exp tables of GF(2^16). log(0) is a sentinel ZERO_LOG above any sum of three logs of
 * non-zero elements, and EXP is 0 from ZERO_LOG on, so a product with a zero factor needs no
 * branch: EXP[LOG[a] + LOG[b] (+ the log of a constant)] is 0 exactly when a or b is 0. EXP is
 * long enough for two sentinels and a constant.
 */
const ZERO_LOG = 3 * (GF16_ORDER - 1) + 1;
const LOG = new Int32Array(GF16_ORDER + 1);
const EXP = new Uint16Array(2 * ZERO_LOG + GF16_ORDER);
{
  let x = 1;
  for (let i = 0; i < GF16_ORDER; i++) {
    LOG[x] = i;
    for (let k = i; k < ZERO_LOG; k += GF16_ORDER) EXP[k] = x;
    x <<= 1;
    if (x & 0x10000) x ^= GF16_POLY;
  }
  LOG[0] = ZERO_LOG;
}

function mul16(a: number, b: number): number {
  return EXP[LOG[a]! + LOG[b]!]!;
}

function sq16(a: number): number {
  return EXP[2 * LOG[a]!]!;
}

/** Inverse of a non-zero element. */
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
  return EXP[LOG[a]! + LOG_LAMBDA]!;
}

function mulLambda2(a: number): number {
  return EXP[LOG[a]! + LOG_LAMBDA2]!;
}

/** GF(2^32): (a1·u + a0)(b1·u + b0) with u^2 = u + λ, Karatsuba (3 products). */
function mul32(a: number, b: number): number {
  const a1 = a >>> 16;
  const a0 = a & 0xffff;
  const b1 = b >>> 16;
  const b0 = b & 0xffff;
  const low = mul16(a0, b0);
  const mid = mul16(a1 ^ a0, b1 ^ b0);
  return (((mid ^ low) << 16) | (low ^ EXP[LOG[a1]! + LOG[b1]! + LOG_LAMBDA]!)) >>> 0;
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
 * Products in GF(2^64) from logs. An element (hi, lo) = ((a3·u + a2)·v + (a1·u + a0)) is
 * "prepared" as the nine logs its Karatsuba product needs: log a0, a1, a0+a1, a2, a3, a2+a3,
 * and of the halves of (hi + lo): b0 = a0+a2, b1 = a1+a3, b0+b1. A product of two prepared
 * elements is then ten EXP lookups and no branch: low = lo·lo′ and mid = (hi+lo)(hi′+lo′) in
 * GF(2^32) take three each, and μ·(hi·hi′) four, expanded so that λ and λ^2 fold into the
 * logs: with hi·hi′ = (m + l)·u + (l + λh) (l = a2a2′, h = a3a3′, m = (a2+a3)(a2′+a3′)),
 * μ·(hi·hi′) = (λm + λ^2·h)·u + (λ^2·m + λ^2·l). The result is (mid + low)·v + (low + μ·high).
 * Code that multiplies by the same element many times prepares it once.
 */
export const PREPARED = 9;

/** Write the nine logs of (hi, lo) at L[o..o+9). */
export function prepare(L: Int32Array, o: number, hi: number, lo: number): void {
  const a0 = lo & 0xffff;
  const a1 = lo >>> 16;
  const a2 = hi & 0xffff;
  const a3 = hi >>> 16;
  const b0 = a0 ^ a2;
  const b1 = a1 ^ a3;
  L[o] = LOG[a0]!;
  L[o + 1] = LOG[a1]!;
  L[o + 2] = LOG[a0 ^ a1]!;
  L[o + 3] = LOG[a2]!;
  L[o + 4] = LOG[a3]!;
  L[o + 5] = LOG[a2 ^ a3]!;
  L[o + 6] = LOG[b0]!;
  L[o + 7] = LOG[b1]!;
  L[o + 8] = LOG[b0 ^ b1]!;
}

/** out[o], out[o+1] = the product of the prepared elements A[a..] and B[b..]. */
function mulPrepared(out: Uint32Array, o: number, A: Int32Array, a: number, B: Int32Array, b: number): void {
  const l = EXP[A[a]! + B[b]!]!;
  const lh = EXP[A[a + 1]! + B[b + 1]! + LOG_LAMBDA]!;
  const lm = EXP[A[a + 2]! + B[b + 2]!]!;
  const ml = EXP[A[a + 6]! + B[b + 6]!]!;
  const mh = EXP[A[a + 7]! + B[b + 7]! + LOG_LAMBDA]!;
  const mm = EXP[A[a + 8]! + B[b + 8]!]!;
  const hm = A[a + 5]! + B[b + 5]!;
  const low = ((lm ^ l) << 16) | (l ^ lh);
  const mid = ((mm ^ ml) << 16) | (ml ^ mh);
  const mu = ((EXP[hm + LOG_LAMBDA]! ^ EXP[A[a + 4]! + B[b + 4]! + LOG_LAMBDA2]!) << 16) | (EXP[hm + LOG_LAMBDA2]! ^ EXP[A[a + 3]! + B[b + 3]! + LOG_LAMBDA2]!);
  out[o] = mid ^ low;
  out[o + 1] = low ^ mu;
}

const PRODUCT = new Uint32Array(2);

/** out[o], out[o+1] ^= the product of the prepared elements A[a..] and B[b..]. */
function mulPreparedXor(out: Uint32Array, o: number, A: Int32Array, a: number, B: Int32Array, b: number): void {
  mulPrepared(PRODUCT, 0, A, a, B, b);
  out[o]! ^= PRODUCT[0]!;
  out[o + 1]! ^= PRODUCT[1]!;
}

/**
 * out[o + 2j], out[o + 2j + 1] ^= c · B[b + PREPARED·j] for j in [0, count): one prepared
 * element times a row of prepared elements, the loop decoding spends its time in. The same
 * lookups as mulPrepared, with c's logs (and the constants folded into them) held in locals.
 */
function mulRowXor(out: Uint32Array, o: number, count: number, c: Int32Array, B: Int32Array, b: number): void {
  const c0 = c[0]!;
  const c1 = c[1]! + LOG_LAMBDA;
  const c2 = c[2]!;
  const c3 = c[3]! + LOG_LAMBDA2;
  const c4 = c[4]! + LOG_LAMBDA2;
  const c5 = c[5]! + LOG_LAMBDA;
  const c5b = c[5]! + LOG_LAMBDA2;
  const c6 = c[6]!;
  const c7 = c[7]! + LOG_LAMBDA;
  const c8 = c[8]!;
  for (let j = 0; j < count; j++, o += 2, b += PREPARED) {
    const l = EXP[c0 + B[b]!]!;
    const lh = EXP[c1 + B[b + 1]!]!;
    const lm = EXP[c2 + B[b + 2]!]!;
    const ml = EXP[c6 + B[b + 6]!]!;
    const mh = EXP[c7 + B[b + 7]!]!;
    const mm = EXP[c8 + B[b + 8]!]!;
    const hm = B[b + 5]!;
    const low = ((lm ^ l) << 16) | (l ^ lh);
    const mid = ((mm ^ ml) << 16) | (ml ^ mh);
    const mu = ((EXP[c5 + hm]! ^ EXP[c4 + B[b + 4]!]!) << 16) | (EXP[c5b + hm]! ^ EXP[c3 + B[b + 3]!]!);
    out[o]! ^= mid ^ low;
    out[o + 1]! ^= low ^ mu;
  }
}

const PA = new Int32Array(PREPARED);
const PB = new Int32Array(PREPARED);

/**
 * Arithmetic in GF(2^64). An element is a pair of 32-bit words (hi, lo); results are written
 * into `out[o]`, `out[o + 1]` so that the hot loops allocate nothing.
 */
export function mul64(out: Uint32Array, o: number, ah: number, al: number, bh: number, bl: number): void {
  prepare(PA, 0, ah, al);
  prepare(PB, 0, bh, bl);
  mulPrepared(out, o, PA, 0, PB, 0);
}

/**
 * Squaring is linear over GF(2): the square of (hi, lo) is the xor of the squares of its eight
 * bytes in place, from a table of 8 × 256 squares (16 KiB), built with the log tables.
 */
const SQUARES = new Uint32Array(8 * 256 * 2);
for (let k = 0; k < 8; k++) {
  for (let v = 0; v < 256; v++) {
    const w = (v << (8 * (k & 3))) >>> 0;
    const ah = k >= 4 ? w : 0;
    const al = k >= 4 ? 0 : w;
    const h = sq32(ah);
    SQUARES[2 * (256 * k + v)] = h;
    SQUARES[2 * (256 * k + v) + 1] = (sq32(al) ^ mulMu(h)) >>> 0;
  }
}

export function sq64(out: Uint32Array, o: number, ah: number, al: number): void {
  const i0 = 2 * (al & 0xff);
  const i1 = 512 + 2 * ((al >>> 8) & 0xff);
  const i2 = 1024 + 2 * ((al >>> 16) & 0xff);
  const i3 = 1536 + 2 * (al >>> 24);
  const i4 = 2048 + 2 * (ah & 0xff);
  const i5 = 2560 + 2 * ((ah >>> 8) & 0xff);
  const i6 = 3072 + 2 * ((ah >>> 16) & 0xff);
  const i7 = 3584 + 2 * (ah >>> 24);
  const S = SQUARES;
  out[o] = S[i0]! ^ S[i1]! ^ S[i2]! ^ S[i3]! ^ S[i4]! ^ S[i5]! ^ S[i6]! ^ S[i7]!;
  out[o + 1] = S[i0 + 1]! ^ S[i1 + 1]! ^ S[i2 + 1]! ^ S[i3 + 1]! ^ S[i4 + 1]! ^ S[i5 + 1]! ^ S[i6 + 1]! ^ S[i7 + 1]!;
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

const POWER_SCRATCH = new Uint32Array(2);
const POWER_LOGS = new Int32Array(2 * PREPARED); // [x^2 | current power]

/**
 * Xor the odd powers x^(2·from+1), …, x^(2·to−1) of x = (hi, lo) into syndromes[from..to).
 * `syndromes` is laid out as (hi, lo) pairs starting at index 0 for s1. If `next` is given,
 * x^(2·to+1) and x^2 go to next[0..4).
 */
export function addPowerSums(syndromes: Uint32Array, from: number, to: number, hi: number, lo: number, next?: Uint32Array): void {
  const t = POWER_SCRATCH;
  sq64(t, 0, hi, lo);
  const x2h = t[0]!;
  const x2l = t[1]!;
  powOdd(t, 0, hi, lo, x2h, x2l, from);
  if (to > from) powerRun(syndromes, from, to, t[0]!, t[1]!, x2h, x2l, t, 0);
  if (next) {
    // x^(2·to+1) and x^2, for growing later from `to`.
    next[0] = t[0]!;
    next[1] = t[1]!;
    next[2] = x2h;
    next[3] = x2l;
  }
}

/** Xor x^(2j+1), j in [from, to), into syndromes, with p = x^(2·from+1) and y = x^2; returns x^(2·to+1) in out. */
function powerRun(syndromes: Uint32Array, from: number, to: number, ph: number, pl: number, yh: number, yl: number, out: Uint32Array, o: number): void {
  const L = POWER_LOGS;
  const t = POWER_SCRATCH;
  prepare(L, 0, yh, yl);
  for (let j = from; j < to; j++) {
    syndromes[2 * j]! ^= ph;
    syndromes[2 * j + 1]! ^= pl;
    prepare(L, PREPARED, ph, pl);
    mulPrepared(t, 0, L, PREPARED, L, 0);
    ph = t[0]!;
    pl = t[1]!;
  }
  out[o] = ph >>> 0;
  out[o + 1] = pl >>> 0;
}

/**
 * For many elements at once: `powers` holds x^(2·from+1) and `squares` x^2 of each element (word
 * pairs); xor x^(2j+1) for j in [from, to) into syndromes[from..to) and leave x^(2·to+1) in
 * `powers`, so that a sketch can be grown later from where it stopped.
 */
export function accumulatePowers(syndromes: Uint32Array, from: number, to: number, powers: Uint32Array, squares: Uint32Array): void {
  if (to <= from) return;
  for (let i = 0; i < powers.length; i += 2) powerRun(syndromes, from, to, powers[i]!, powers[i + 1]!, squares[i]!, squares[i + 1]!, powers, i);
}

const POW_SCRATCH = new Uint32Array(2);

/** out[o..] = x · (x^2)^k = x^(2k+1), by square-and-multiply. */
export function powOdd(out: Uint32Array, o: number, hi: number, lo: number, x2h: number, x2l: number, k: number): void {
  let rh = hi;
  let rl = lo;
  let bh = x2h;
  let bl = x2l;
  const t = POW_SCRATCH;
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
  const top = frobenius(f);
  if (!top) return null;
  const roots: bigint[] = [];
  if (!findRoots(f, roots, { state: 0x9e3779b9 }, top)) return null;
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
  // The sequence's logs, prepared once: every discrepancy multiplies by them.
  const seqLogs = new Int32Array(PREPARED * n);
  for (let i = 0; i < n; i++) prepare(seqLogs, PREPARED * i, seq[2 * i]!, seq[2 * i + 1]!);
  const c = new Int32Array(PREPARED);
  for (let i = 0; i < n; i++) {
    // Discrepancy d = s_i + Σ C_j s_(i−j).
    t[0] = seq[2 * i]!;
    t[1] = seq[2 * i + 1]!;
    for (let j = 1; j <= L; j++) {
      const ch = C[2 * j]!;
      const cl = C[2 * j + 1]!;
      if (ch === 0 && cl === 0) continue;
      prepare(c, 0, ch, cl);
      mulPreparedXor(t, 0, c, 0, seqLogs, PREPARED * (i - j));
    }
    const dh = t[0]!;
    const dl = t[1]!;
    if (dh === 0 && dl === 0) {
      m++;
      continue;
    }
    inv64(t, 0, bh, bl);
    mul64(t, 0, dh, dl, t[0]!, t[1]!);
    prepare(c, 0, t[0]!, t[1]!);
    const previous = 2 * L <= i ? C.slice() : null;
    for (let j = 0; j + m <= n; j++) {
      const xh = B[2 * j]!;
      const xl = B[2 * j + 1]!;
      if (xh === 0 && xl === 0) continue;
      prepare(PB, 0, xh, xl);
      mulPreparedXor(C, 2 * (j + m), c, 0, PB, 0);
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
  new Modulus(f).reduceInPlace(r, r.length / 2 - 1);
  return r.slice(0, 2 * degree(f));
}

/**
 * Arithmetic modulo a monic polynomial f of degree d ≥ 1, with f's coefficients prepared.
 * Squaring mod f uses the table Q_i = x^(2i) mod f (i ≥ d/2; below, x^(2i) is reduced already):
 * p^2 = Σ p_i^2·x^(2i) in characteristic 2, so p^2 mod f = Σ p_i^2·Q_i costs d^2/2 products
 * instead of the d^2 of squaring and reducing.
 */
class Modulus {
  readonly d: number;
  readonly #logs: Int32Array;
  #q: Int32Array | null = null;
  readonly #half: number;
  readonly #c = new Int32Array(PREPARED);
  readonly #t = new Uint32Array(2);

  constructor(f: Poly) {
    const d = degree(f);
    this.d = d;
    this.#half = Math.ceil(d / 2);
    this.#logs = new Int32Array(PREPARED * d);
    for (let i = 0; i < d; i++) prepare(this.#logs, PREPARED * i, f[2 * i]!, f[2 * i + 1]!);
  }

  /** Reduce r, of degree ≤ top, mod f in place: afterwards its coefficients from d on are 0. */
  reduceInPlace(r: Poly, top: number): void {
    const { d } = this;
    const logs = this.#logs;
    const c = this.#c;
    for (let k = top; k >= d; k--) {
      const ch = r[2 * k]!;
      const cl = r[2 * k + 1]!;
      if (ch === 0 && cl === 0) continue;
      prepare(c, 0, ch, cl);
      const base = 2 * (k - d);
      mulRowXor(r, base, d, c, logs, 0);
      r[2 * k] = 0;
      r[2 * k + 1] = 0;
    }
  }

  #table(): Int32Array {
    if (this.#q) return this.#q;
    const { d } = this;
    const half = this.#half;
    const q = new Int32Array(PREPARED * d * (d - half));
    let row = new Uint32Array(2 * (d + 2));
    row[2 * (2 * half) + 1] = 1; // x^(2·half), degree d or d + 1
    this.reduceInPlace(row, 2 * half);
    for (let i = half; i < d; i++) {
      const at = PREPARED * d * (i - half);
      for (let j = 0; j < d; j++) prepare(q, at + PREPARED * j, row[2 * j]!, row[2 * j + 1]!);
      if (i + 1 === d) break;
      const next = new Uint32Array(2 * (d + 2));
      next.set(row.subarray(0, 2 * d), 4);
      this.reduceInPlace(next, d + 1);
      row = next;
    }
    this.#q = q;
    return q;
  }

  /** out = p^2 mod f; p and out hold d coefficients and are different arrays. */
  squareMod(p: Poly, out: Poly): void {
    const { d } = this;
    const half = this.#half;
    const q = half < d ? this.#table() : null;
    const t = this.#t;
    const c = this.#c;
    out.fill(0, 0, 2 * d);
    for (let i = 0; i < d; i++) {
      const ph = p[2 * i]!;
      const pl = p[2 * i + 1]!;
      if (ph === 0 && pl === 0) continue;
      sq64(t, 0, ph, pl);
      if (i < half) {
        out[4 * i]! ^= t[0]!;
        out[4 * i + 1]! ^= t[1]!;
        continue;
      }
      prepare(c, 0, t[0]!, t[1]!);
      const at = PREPARED * d * (i - half);
      mulRowXor(out, 0, d, c, q!, at);
    }
  }
}

/** What root finding reuses of the located polynomial f: x^(2^k) mod f for k < 64, prepared. */
interface Frobenius {
  f: Poly;
  d: number;
  /** 64 rows of d prepared coefficients. */
  powers: Int32Array;
}

/**
 * x^(2^k) mod f for k < 64, or null unless x^(2^64) ≡ x (mod f), which holds exactly when
 * monic f divides x^(2^64) − x, i.e. has deg f distinct roots in GF(2^64).
 */
function frobenius(f: Poly): Frobenius | null {
  const mod = new Modulus(f);
  const { d } = mod;
  let p: Poly = new Uint32Array(2 * Math.max(d, 2));
  p[3] = 1; // x
  mod.reduceInPlace(p, 1);
  p = p.slice(0, 2 * d);
  const x = p.slice();
  const powers = new Int32Array(64 * PREPARED * d);
  let next: Poly = new Uint32Array(2 * d);
  for (let k = 0; k < 64; k++) {
    for (let j = 0; j < d; j++) prepare(powers, PREPARED * (k * d + j), p[2 * j]!, p[2 * j + 1]!);
    mod.squareMod(p, next);
    [p, next] = [next, p];
  }
  for (let i = 0; i < p.length; i++) if (p[i] !== x[i]) return null;
  return { f, d, powers };
}

/** Tr(β·x) mod f = Σ_{k<64} β^(2^k)·x^(2^k) mod f, into out (d coefficients). */
function traceMod(top: Frobenius, bh: number, bl: number, out: Poly): void {
  const { d, powers } = top;
  const b = new Int32Array(PREPARED);
  const t = new Uint32Array(2);
  out.fill(0, 0, 2 * d);
  for (let k = 0; k < 64; k++) {
    prepare(b, 0, bh, bl);
    const at = PREPARED * d * k;
    mulRowXor(out, 0, d, b, powers, at);
    sq64(t, 0, bh, bl);
    bh = t[0]!;
    bl = t[1]!;
  }
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
  const gLogs = new Int32Array(PREPARED * (dg + 1));
  for (let i = 0; i <= dg; i++) prepare(gLogs, PREPARED * i, g[2 * i]!, g[2 * i + 1]!);
  const c = new Int32Array(PREPARED);
  for (let k = df; k >= dg; k--) {
    const ch = r[2 * k]!;
    const cl = r[2 * k + 1]!;
    q[2 * (k - dg)] = ch;
    q[2 * (k - dg) + 1] = cl;
    if (ch === 0 && cl === 0) continue;
    prepare(c, 0, ch, cl);
    mulRowXor(r, 2 * (k - dg), dg + 1, c, gLogs, 0);
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
 *
 * Tr(β·x) mod f comes from the powers x^(2^k) mod F of the located polynomial F, which f
 * divides: 64·deg F products, then a reduction mod f. For a small factor, squaring mod f
 * itself (about 32·(deg f)^2 products) is cheaper, and is used instead. Either way the
 * polynomial, and so the roots and their order, are those of the plain definition.
 */
function findRoots(f: Poly, roots: bigint[], rng: { state: number }, top: Frobenius): boolean {
  const df = degree(f);
  if (df === 0) return true;
  if (df === 1) {
    roots.push(fromWords(f[0]!, f[1]!)); // x + c: root c
    return true;
  }
  const D = top.d;
  const isTop = f === top.f;
  const viaTop = isTop || 64 * D + (D - df) * df < 33 * df * df;
  const mod = isTop ? null : new Modulus(f);
  const wide = new Uint32Array(2 * D);
  let p: Poly = new Uint32Array(2 * df);
  let next: Poly = new Uint32Array(2 * df);
  for (let attempt = 0; attempt < 64; attempt++) {
    const bh = nextWord(rng);
    const bl = nextWord(rng);
    let acc: Poly;
    if (viaTop) {
      traceMod(top, bh, bl, wide);
      if (mod) mod.reduceInPlace(wide, D - 1);
      acc = wide.slice(0, 2 * df);
    } else {
      p.fill(0);
      p[2] = bh;
      p[3] = bl;
      acc = p.slice();
      for (let i = 1; i < 64; i++) {
        mod!.squareMod(p, next);
        [p, next] = [next, p];
        for (let k = 0; k < acc.length; k++) acc[k]! ^= p[k]!;
      }
    }
    if (degree(acc) <= 0) continue;
    const g = gcd(f, acc);
    const dg = degree(g);
    if (dg <= 0 || dg >= df) continue;
    return findRoots(g, roots, rng, top) && findRoots(divide(f, g), roots, rng, top);
  }
  return false;
}
