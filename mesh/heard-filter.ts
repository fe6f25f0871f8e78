/**
 * "Has this record been heard on this link lately?" — a rolling pair of Bloom filters. It is
 * the cheap question sync asks before pushing a record: if a neighbour already broadcast it,
 * everyone in range has it and we stay quiet.
 *
 * A Bloom filter fits because a wrong "yes" (false positive, ~1%) only delays a push until the
 * next reconciliation finds the difference, while memory stays fixed however much traffic
 * passes. Two generations rotate after `capacity` insertions or `maxAgeMs`, so entries are
 * remembered for at least one generation and at most two.
 *
 * The filter is the one of the `bloom-filters` package (3.0.4), bit for bit: the same size
 * and number of hashes for a capacity and error rate, and the same bits for an id — its key
 * is the id in base 36, hashed with xxHash64 under the package's two default seeds, combined
 * by its enhanced double hashing — so its answers, false positives included, are the
 * package's (test/mesh/heard-filter.test.ts checks them against it). It is written out here
 * because the package's pure-JS 64-bit arithmetic (an object per intermediate value, a seeded
 * RNG built per filter) was a tenth of a simulation's CPU: here one hash of an id serves both
 * generations and allocates nothing but the key string.
 */

export interface HeardFilterOptions {
  /** Insertions per generation. Default 4096. */
  capacity?: number;
  /** False-positive rate of a full generation. Default 0.01. */
  errorRate?: number;
  /** A generation older than this is retired. Default 600,000 ms. */
  maxAgeMs?: number;
}

export class HeardFilter {
  #current: Uint32Array;
  #previous: Uint32Array;
  #count = 0;
  #startedAt: number;
  readonly #capacity: number;
  readonly #maxAgeMs: number;
  /** Bits per generation and bits set per id (bloom-filters' optimalFilterSize and optimalHashes). */
  readonly #size: number;
  readonly #hashes: number;
  /** The bit indexes of the id last asked about (scratch). */
  readonly #indexes: Uint32Array;

  constructor(
    options: HeardFilterOptions,
    private readonly clock: { now(): number },
  ) {
    this.#capacity = options.capacity ?? 4096;
    const errorRate = options.errorRate ?? 0.01;
    this.#maxAgeMs = options.maxAgeMs ?? 600_000;
    // The package's formulas, as it evaluates them.
    this.#size = Math.ceil(-((this.#capacity * Math.log(errorRate)) / Math.pow(Math.log(2), 2)));
    this.#hashes = Math.ceil((this.#size / this.#capacity) * Math.log(2));
    if (!(this.#size >= 1 && this.#hashes >= 1)) throw new RangeError('a heard filter needs a positive capacity and an error rate in (0, 1)');
    this.#indexes = new Uint32Array(this.#hashes);
    this.#current = this.#fresh();
    this.#previous = this.#fresh();
    this.#startedAt = clock.now();
  }

  add(id: bigint): void {
    this.#rotateIfDue();
    this.#index(id);
    const bits = this.#current;
    for (const i of this.#indexes) bits[i >>> 5]! |= 1 << (i & 31);
    this.#count++;
  }

  has(id: bigint): boolean {
    this.#rotateIfDue();
    this.#index(id);
    return this.#holds(this.#current) || this.#holds(this.#previous);
  }

  /** Forget everything (e.g. the link went down: nobody may have heard what we sent). */
  clear(): void {
    this.#current.fill(0);
    this.#previous.fill(0);
    this.#count = 0;
    this.#startedAt = this.clock.now();
  }

  #fresh(): Uint32Array {
    return new Uint32Array(Math.ceil(this.#size / 32));
  }

  /** True when every bit of the last indexed id is set in `bits`. */
  #holds(bits: Uint32Array): boolean {
    for (const i of this.#indexes) if ((bits[i >>> 5]! & (1 << (i & 31))) === 0) return false;
    return true;
  }

  /** The id's bit indexes into #indexes: bloom-filters' getIndexes of its base-36 key. */
  #index(id: bigint): void {
    const key = id.toString(36);
    const first = xxh64Low32(key, SEED_FIRST);
    const second = xxh64Low32(key, SEED_SECOND);
    const size = this.#size;
    for (let n = 0; n < this.#hashes; n++) this.#indexes[n] = Math.abs((first + n * second + Math.floor((Math.pow(n, 3) - n) / 6)) % size);
  }

  #rotateIfDue(): void {
    if (this.#count < this.#capacity && this.clock.now() - this.#startedAt < this.#maxAgeMs) return;
    // The retired generation's bits become the new one (a short age rotates often: no garbage).
    const recycled = this.#previous.fill(0);
    this.#previous = this.#current;
    this.#current = recycled;
    this.#count = 0;
    this.#startedAt = this.clock.now();
  }
}

// ---- xxHash64 ----------------------------------------------------------------------------
//
// bloom-filters hashes with xxhashjs's h64 under seeds getDefaultSeed() + 1 and + 2
// (0x1234567891 and 0x1234567892, which xxhashjs truncates to their low 32 bits) and keeps
// the low 32 bits of each hash (its UINT64.toNumber). A 64-bit value here is a (hi, lo) pair
// of 32-bit words in S, named by the slot of its hi word, so the hash allocates nothing.

const SEED_FIRST = 0x34567891;
const SEED_SECOND = 0x34567892;

const P1 = [0x9e3779b1, 0x85ebca87] as const;
const P2 = [0xc2b2ae3d, 0x27d4eb4f] as const;
const P3 = [0x165667b1, 0x9e3779f9] as const;
const P4 = [0x85ebca77, 0xc2b2ae63] as const;
const P5 = [0x27d4eb2f, 0x165667c5] as const;
/** 2^64 − P1, to start lane 4 at seed − P1. */
const MINUS_P1 = [~P1[0] >>> 0, 0x100000000 - P1[1]] as const;

/** Slots: the hash, two scratch values, the four lanes of long keys. */
const S = new Uint32Array(14);
const HASH = 0;
const K = 2;
const T = 4;
const LANES = 6;

function set(a: number, hi: number, lo: number): void {
  S[a] = hi;
  S[a + 1] = lo;
}

/** S[a] ·= (hi, lo) mod 2^64: the low word's full product from 16-bit halves, the cross terms mod 2^32. */
function mul(a: number, hi: number, lo: number): void {
  const aHi = S[a]!;
  const aLo = S[a + 1]!;
  const a0 = aLo & 0xffff;
  const a1 = aLo >>> 16;
  const b0 = lo & 0xffff;
  const b1 = lo >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33: exact
  const low = a0 * b0 + (mid % 0x10000) * 0x10000; // < 2^33: exact
  S[a + 1] = low;
  S[a] = a1 * b1 + Math.floor(mid / 0x10000) + Math.floor(low / 0x100000000) + Math.imul(aHi, lo) + Math.imul(aLo, hi);
}

/** S[a] += (hi, lo) mod 2^64. */
function add(a: number, hi: number, lo: number): void {
  const low = S[a + 1]! + lo;
  S[a + 1] = low;
  S[a] = S[a]! + hi + (low > 0xffffffff ? 1 : 0);
}

function xor(a: number, b: number): void {
  S[a]! ^= S[b]!;
  S[a + 1]! ^= S[b + 1]!;
}

/** S[a] = rotl(S[a], r), 0 < r < 32. */
function rotl(a: number, r: number): void {
  const hi = S[a]!;
  const lo = S[a + 1]!;
  S[a] = (hi << r) | (lo >>> (32 - r));
  S[a + 1] = (lo << r) | (hi >>> (32 - r));
}

/** S[a] ^= S[a] >>> s, 0 < s < 64. */
function xorShiftRight(a: number, s: number): void {
  const hi = S[a]!;
  const lo = S[a + 1]!;
  if (s >= 32) {
    S[a + 1] = lo ^ (hi >>> (s - 32));
  } else {
    S[a + 1] = lo ^ ((lo >>> s) | (hi << (32 - s)));
    S[a] = hi ^ (hi >>> s);
  }
}

function le32(bytes: Uint8Array, p: number): number {
  return bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
}

/** The reference's round: acc = rotl(acc + input · P2, 31) · P1, input the 8 bytes at p. */
function round(acc: number, bytes: Uint8Array, p: number): void {
  set(T, le32(bytes, p + 4), le32(bytes, p));
  mul(T, P2[0], P2[1]);
  add(acc, S[T]!, S[T + 1]!);
  rotl(acc, 31);
  mul(acc, P1[0], P1[1]);
}

/** UTF-8 bytes of the key (base-36 keys are ASCII: one byte per character). */
function keyBytes(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x80) return new TextEncoder().encode(key);
    out[i] = c;
  }
  return out;
}

/** The low 32 bits of xxHash64 of `key`'s UTF-8 bytes under a 32-bit seed. */
export function xxh64Low32(key: string, seed: number): number {
  const bytes = keyBytes(key);
  const len = bytes.length;
  let p = 0;
  if (len >= 32) {
    set(LANES, 0, seed);
    add(LANES, P1[0], P1[1]);
    add(LANES, P2[0], P2[1]);
    set(LANES + 2, 0, seed);
    add(LANES + 2, P2[0], P2[1]);
    set(LANES + 4, 0, seed);
    set(LANES + 6, 0, seed);
    add(LANES + 6, MINUS_P1[0], MINUS_P1[1]);
    for (; p + 32 <= len; p += 32) for (let lane = 0; lane < 4; lane++) round(LANES + 2 * lane, bytes, p + 8 * lane);
    set(HASH, 0, 0);
    const rotations = [1, 7, 12, 18];
    for (let lane = 0; lane < 4; lane++) {
      set(K, S[LANES + 2 * lane]!, S[LANES + 2 * lane + 1]!);
      rotl(K, rotations[lane]!);
      add(HASH, S[K]!, S[K + 1]!);
    }
    const laneBytes = new Uint8Array(8);
    for (let lane = 0; lane < 4; lane++) {
      // h = (h ^ round(0, lane)) · P1 + P4
      const view = new DataView(laneBytes.buffer);
      view.setUint32(0, S[LANES + 2 * lane + 1]!, true);
      view.setUint32(4, S[LANES + 2 * lane]!, true);
      set(K, 0, 0);
      round(K, laneBytes, 0);
      xor(HASH, K);
      mul(HASH, P1[0], P1[1]);
      add(HASH, P4[0], P4[1]);
    }
  } else {
    set(HASH, 0, seed);
    add(HASH, P5[0], P5[1]);
  }
  add(HASH, 0, len);
  for (; p + 8 <= len; p += 8) {
    // h = rotl(h ^ round(0, input), 27) · P1 + P4
    set(K, 0, 0);
    round(K, bytes, p);
    xor(HASH, K);
    rotl(HASH, 27);
    mul(HASH, P1[0], P1[1]);
    add(HASH, P4[0], P4[1]);
  }
  if (p + 4 <= len) {
    // h = rotl(h ^ (u32 input · P1), 23) · P2 + P3
    set(K, 0, le32(bytes, p) >>> 0);
    mul(K, P1[0], P1[1]);
    xor(HASH, K);
    rotl(HASH, 23);
    mul(HASH, P2[0], P2[1]);
    add(HASH, P3[0], P3[1]);
    p += 4;
  }
  for (; p < len; p++) {
    // h = rotl(h ^ (byte · P5), 11) · P1
    set(K, 0, bytes[p]!);
    mul(K, P5[0], P5[1]);
    xor(HASH, K);
    rotl(HASH, 11);
    mul(HASH, P1[0], P1[1]);
  }
  xorShiftRight(HASH, 33);
  mul(HASH, P2[0], P2[1]);
  xorShiftRight(HASH, 29);
  mul(HASH, P3[0], P3[1]);
  xorShiftRight(HASH, 32);
  return S[HASH + 1]!;
}
