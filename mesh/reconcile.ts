/**
 * Set reconciliation for sync: two peers learn the symmetric difference of the records they
 * hold with bytes that grow with the difference d, not with the store size n. Records are
 * named by a 64-bit short id (`shortId`). Ranges of the id space are summarised with
 * PinSketches (mesh/sketch.ts); this file is the pure, deterministic state machine of one
 * session (no I/O, no timers, no randomness) and the codec of its messages.
 *
 * Roles. The initiator calls `open()` and then only answers requests: it keeps no state per
 * range beyond a bounded cache. The responder, who receives the opening, drives the session
 * and is the side that learns the difference: its `receive()` reports `theyLack` (ids it
 * holds that the initiator lacks) and `weLack`; the initiator's lists stay empty. The sync
 * layer then pushes what the peer lacks and asks for what it lacks. Messages are assumed to
 * arrive in order and without loss (the sync layer restarts a session otherwise).
 *
 * Ranges. Range (depth, prefix) holds the ids whose top `depth` bits equal `prefix`. For a
 * range the initiator sends its count, a 32-bit checksum (xor of a mixing hash of each id) and
 * the syndromes s1, s3, … of its sketch. The responder xors in its own sketch and the
 * elements of the range it has already found; what remains is the sketch of the rest of the
 * difference. A decode is accepted only if every element lies in the range, the counts
 * balance and the checksum matches (a wrong decode passes with probability about 2^-32).
 *
 * How the responder proceeds, per range, when a decode fails:
 *  1. grow: ask for more syndromes (sketches are prefixes of larger ones, so nothing sent
 *     is wasted), √(2c) more each round, or at once as many as the count difference
 *     proves are missing (exact when one side holds the whole difference);
 *  2. probe: once a range without an estimate holds PROBE_AFTER (24) syndromes, reconcile
 *     its first sixteenth (a range PROBE_BITS = 4 deeper), which estimates the range's
 *     difference as 16× what the probe found (the probe's elements are part of the answer,
 *     so only its rounds cost extra);
 *  3. then either grow the range to the estimate, or, if that is more than a sketch should
 *     hold, split it into 2^j children of at most maxDecodeCapacity/1.3 (49 of 64) expected
 *     differences each (fewer, larger ranges spend less on headers) and ask
 *     for all but the last child: the range's own sketch, with every found element removed,
 *     is the last child's sketch, so the syndromes spent before the split are not wasted.
 * Children grow, probe and split the same way. The session ends (DONE) when the whole
 * space (depth 0) decodes. Differences up to ~16 cost little more than 8 bytes each;
 * larger ones pay for the probe, a few percent of unused syndromes and range headers.
 *
 * Message layout, version 1 (varint = unsigned LEB128, canonical; u32 big-endian):
 *
 *   off  size   field
 *   0    1      bits 7-4: version = 1; bits 3-0: type: 1 OPEN, 2 SKETCH (initiator →
 *               responder), 3 REQUEST, 4 DONE (responder → initiator)
 *   1    …      entries, up to the end of the message: OPEN exactly one (of the whole space,
 *               with 1..maxDecodeCapacity syndromes: `open(c)` settles d ≤ c at once), SKETCH and
 *               REQUEST 1..MAX_ENTRIES, DONE none
 *
 *   OPEN and SKETCH entry                  REQUEST entry
 *     1      depth (0..64)                   1      depth (0..64)
 *     ⌈d/8⌉  prefix, big-endian, < 2^depth   ⌈d/8⌉  prefix
 *     varint from: index of the first        varint from
 *            syndrome (0 for s1)             varint to: syndromes [from, to) wanted
 *     varint count   } only when from = 0
 *     4      checksum}
 *     varint k: number of syndromes
 *     8k     syndromes s(2·from+1), …, each 8 bytes big-endian
 *
 * Bounds: entries per message ≤ MAX_ENTRIES, syndrome indices < maxDecodeCapacity, ranges
 * per session ≤ MAX_RANGES, bytes per session ≤ maxSessionBytes, sketch work per session
 * ≤ WORK_FACTOR passes over the set at full capacity. Hostile bytes throw a MeshError with a
 * RECONCILE_* code and nothing else: MALFORMED and VERSION (bytes), UNEXPECTED (a message
 * the session did not ask for), STATE (after DONE, or open() twice), CAPACITY, LIMIT and
 * BUDGET (bounds), INCONSISTENT (a peer whose sketches do not add up). After any error the
 * session is over. After DONE further messages throw RECONCILE_STATE; drop them.
 *
 * Our sketches. A set from createIdSet (SketchedIdSet) keeps the sketches sessions computed,
 * and large sets (≥ 4096 ids) sketches of 256 buckets, and brings them up to date by the
 * changes since (sketches are linear), so a node that syncs again and again with its
 * neighbours does not rebuild sketches over its whole store each time. The work budget still
 * counts what a session would compute without that cache, so a session's outcome (and its
 * bytes) never depend on it.
 */
import { ByteReader, ByteWriter, varintLength } from './bytes.ts';
import { MeshError } from './errors.ts';
import { accumulatePowers, addPowerSums, MAX_SKETCH_CAPACITY, powOdd, Sketch, sq64 } from './sketch.ts';

export const RECONCILE_VERSION = 1;
export const DEFAULT_MAX_DECODE_CAPACITY = 64;
export const DEFAULT_MAX_SESSION_BYTES = 256 * 1024;
/** Ranges a responder tracks in one session. */
export const MAX_RANGES = 2048;
/** Entries in one message. */
export const MAX_ENTRIES = 256;
/**
 * Smallest message budget: the header and one entry with a single syndrome at the deepest
 * range (1 + 1 + 8 + 2 + 8 + 4 + 2 + 8 = 34 bytes), with a margin.
 */
export const MIN_MESSAGE_BYTES = 40;
/** Largest maxDecodeCapacity a reconciler accepts: decoding 128 syndromes takes about 40 ms (a wrong-size sketch a peer sends costs that much). */
export const MAX_DECODE_CAPACITY = 128;
/**
 * Sketch products a session may spend, in units of (set size + 1024) × maxDecodeCapacity:
 * an honest session computes each level of its range tree once (a few levels); a peer that
 * asks for sketches the cache has dropped runs into this instead of taking the CPU.
 */
const WORK_FACTOR = 8;
/** An opening's bytes besides its syndromes: type, depth, from, count (≤ 10), checksum, k. */
const OPEN_OVERHEAD_BYTES = 1 + 1 + 1 + 10 + 4 + 2;
/** A range without an estimate grows to this many syndromes before it is probed. */
const PROBE_AFTER = 24;
/** The probe is the first 1/2^PROBE_BITS of a range. */
const PROBE_BITS = 4;

const enum MessageType {
  Open = 1,
  Sketch = 2,
  Request = 3,
  Done = 4,
}

// ---------------------------------------------------------------------------------------
// Short ids and id sets

/**
 * The 64-bit short id of a record: the first 8 bytes of its 32-byte id, big-endian. A short
 * id of 0 becomes 1, because 0 cannot be an element of a sketch (one id in 2^63 shares its
 * short id with another this way, as any two ids do with probability 2^-64).
 */
export function shortId(recordId: Uint8Array): bigint {
  if (!(recordId instanceof Uint8Array) || recordId.length < 8) {
    throw new MeshError('RECONCILE_ID', 'a record id has at least 8 bytes');
  }
  const view = new DataView(recordId.buffer, recordId.byteOffset, 8);
  const id = view.getBigUint64(0);
  return id === 0n ? 1n : id;
}

/** Read access to a set of short ids, as the reconciler needs it. */
export interface IdSet {
  readonly size: number;
  has(id: bigint): boolean;
  /** Ids in a range: their top `depth` bits equal `prefix`. */
  inRange(depth: number, prefix: bigint): Iterable<bigint>;
}

export interface MutableIdSet extends IdSet {
  /** True when the id was new. */
  add(id: bigint): boolean;
  /** True when the id was present. */
  delete(id: bigint): boolean;
  /** The ids in ascending order; the array is never changed afterwards (copy on write). */
  sorted(): BigUint64Array;
}

const ID_MAX = (1n << 64n) - 1n;

function checkId(id: bigint): void {
  if (typeof id !== 'bigint' || id < 1n || id > ID_MAX) throw new MeshError('RECONCILE_ID', 'short ids are integers in 1..2^64-1');
}

/** First and last-plus-one id of a range, as bigints. */
function rangeBounds(depth: number, prefix: bigint): [bigint, bigint] {
  const shift = BigInt(64 - depth);
  return [prefix << shift, (prefix + 1n) << shift];
}

/** Index of the first element ≥ value in a sorted array. */
function lowerBound(sorted: BigUint64Array, value: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The ids of `sorted` in a range, as a view (no copy). */
function sliceRange(sorted: BigUint64Array, depth: number, prefix: bigint): BigUint64Array {
  const [first, end] = rangeBounds(depth, prefix);
  return sorted.subarray(lowerBound(sorted, first), end > ID_MAX ? sorted.length : lowerBound(sorted, end));
}

/**
 * A set of short ids for a node's store: a hash set for membership, and a sorted array,
 * brought up to date on first use after a change, for ranges. Reconcilers take the sorted
 * array as a snapshot, so a session sees one consistent set while the store changes.
 */
export function createIdSet(ids: Iterable<bigint> = []): MutableIdSet {
  return new SketchedIdSet(ids);
}

/** Cached range sketches a set keeps (each at most MAX_DECODE_CAPACITY syndromes, 1 KiB). */
const CACHED_RANGES = 128;
/** Changes a set remembers, at least; more for large sets (a quarter of the set). */
const MIN_LOG = 1024;

/** Sets of at least this many ids keep bucket sketches (below, building a range's sketch is cheap). */
const BUCKETS_FROM = 4096;
/** Bucket k holds the ids whose top BUCKET_BITS bits are k. */
const BUCKET_BITS = 8;
const BUCKETS = 1 << BUCKET_BITS;

/** Sketches of the 2^BUCKET_BITS buckets of a set, each of `capacity` syndromes, at `version`. */
interface Buckets {
  capacity: number;
  version: number;
  /** Bucket k's syndromes at [2·capacity·k, 2·capacity·(k + 1)). */
  syndromes: Uint32Array;
  counts: Int32Array;
  checksums: Int32Array;
  /**
   * To grow without starting over: each id's next odd power and square (word pairs), the ids
   * of the build in sorted order (bucket k's from starts[k] to starts[k + 1]), then the ids
   * added since, with their buckets in `addedBuckets`. Null after a deletion.
   */
  state: { powers: Uint32Array; squares: Uint32Array; starts: Int32Array; built: number; added: number; addedBuckets: number[] } | null;
}

/** Build bucket sketches of `capacity` syndromes over a set's sorted ids (word pairs). */
function buildBuckets(words: Uint32Array, version: number, capacity: number): Buckets {
  const b: Buckets = { capacity, version, syndromes: new Uint32Array(2 * capacity * BUCKETS), counts: new Int32Array(BUCKETS), checksums: new Int32Array(BUCKETS), state: null };
  const starts = new Int32Array(BUCKETS + 1);
  const squares = new Uint32Array(words.length);
  const powers = words.slice();
  for (let i = 0; i < words.length; i += 2) {
    const k = words[i]! >>> (32 - BUCKET_BITS);
    b.counts[k]!++;
    b.checksums[k]! ^= idHash(words[i]!, words[i + 1]!);
    starts[k + 1] = i + 2;
    sq64(squares, i, words[i]!, words[i + 1]!);
  }
  for (let k = 1; k <= BUCKETS; k++) starts[k] = Math.max(starts[k]!, starts[k - 1]!);
  b.state = { powers, squares, starts, built: words.length / 2, added: 0, addedBuckets: [] };
  for (let k = 0; k < BUCKETS; k++) {
    accumulatePowers(b.syndromes.subarray(2 * capacity * k, 2 * capacity * (k + 1)), 0, capacity, powers.subarray(starts[k]!, starts[k + 1]!), squares.subarray(starts[k]!, starts[k + 1]!));
  }
  return b;
}

/** Toggle an id in the buckets: a change from the log. */
function toggleBucket(b: Buckets, id: bigint, added: boolean): void {
  const hi = Number(id >> 32n);
  const lo = Number(id & 0xffffffffn);
  const k = hi >>> (32 - BUCKET_BITS);
  const c = b.capacity;
  addPowerSums(b.syndromes.subarray(2 * c * k, 2 * c * (k + 1)), 0, c, hi, lo, NEXT_POWER);
  b.counts[k]! += added ? 1 : -1;
  b.checksums[k]! ^= idHash(hi, lo);
  const s = b.state;
  if (!s) return;
  if (!added) {
    b.state = null;
    return;
  }
  const at = 2 * (s.built + s.added);
  if (at + 2 > s.powers.length) {
    const powers = new Uint32Array(Math.max(16, 2 * s.powers.length));
    powers.set(s.powers);
    const squares = new Uint32Array(powers.length);
    squares.set(s.squares);
    s.powers = powers;
    s.squares = squares;
  }
  s.powers.set(NEXT_POWER.subarray(0, 2), at);
  s.squares.set(NEXT_POWER.subarray(2, 4), at);
  s.added++;
  s.addedBuckets.push(k);
}

/** Grow every bucket to `capacity`; `wordsOf` gives the set's sorted ids when the state is gone. Returns the products spent. */
function growBuckets(b: Buckets, wordsOf: () => Uint32Array, capacity: number): number {
  const from = b.capacity;
  if (!b.state) {
    // Start over from the ids: their powers from x^(2·from+1) on.
    const words = wordsOf();
    const fresh = buildBuckets(words, b.version, 0);
    const s = fresh.state!;
    for (let i = 0; i < words.length; i += 2) powOdd(s.powers, i, words[i]!, words[i + 1]!, s.squares[i]!, s.squares[i + 1]!, from);
    b.state = s;
  }
  const s = b.state;
  const syndromes = new Uint32Array(2 * capacity * BUCKETS);
  for (let k = 0; k < BUCKETS; k++) {
    const own = syndromes.subarray(2 * capacity * k, 2 * capacity * (k + 1));
    own.set(b.syndromes.subarray(2 * from * k, 2 * from * (k + 1)));
    accumulatePowers(own, from, capacity, s.powers.subarray(s.starts[k]!, s.starts[k + 1]!), s.squares.subarray(s.starts[k]!, s.starts[k + 1]!));
  }
  for (let j = 0; j < s.added; j++) {
    const k = s.addedBuckets[j]!;
    const at = 2 * (s.built + j);
    accumulatePowers(syndromes.subarray(2 * capacity * k, 2 * capacity * (k + 1)), from, capacity, s.powers.subarray(at, at + 2), s.squares.subarray(at, at + 2));
  }
  b.syndromes = syndromes;
  b.capacity = capacity;
  return (s.built + s.added) * (capacity - from);
}

/** The sketch of one range of a set at one version. */
interface CachedSketch {
  depth: number;
  prefix: bigint;
  count: number;
  checksum: number;
  capacity: number;
  syndromes: Uint32Array;
  version: number;
  /**
   * To grow without starting over: each id's next odd power and its square (word pairs), for
   * `stateIds` ids; new ids are appended, a deleted id drops the state.
   */
  powers: Uint32Array | null;
  squares: Uint32Array | null;
  stateIds: number;
}

/** Count, checksum and syndromes of a range as a reconciler sees it. */
export interface RangeSummary {
  count: number;
  checksum: number;
  /** At least the capacity asked for, as (hi, lo) word pairs. */
  syndromes: Uint32Array;
}

/**
 * The id set of createIdSet. Besides membership and sorted snapshots it keeps the sketches
 * of the ranges reconcilers asked about, and the ids changed lately (a log), so a session
 * does not rebuild a sketch over the whole set: sketches are linear, so a change costs one
 * product per cached syndrome of the ranges holding it (applied when a sketch is next asked
 * for), and the sketch of the set as it was at an earlier version is the current one with
 * the changes since undone. A version is the number of changes so far.
 */
export class SketchedIdSet implements MutableIdSet {
  readonly #members = new Set<bigint>();
  #sorted: BigUint64Array | null = null;
  #sortedVersion = 0;
  #version = 0;
  /** #log[i] (added: #logAdded[i]) took the set from version #logStart + i to the next. */
  #log: bigint[] = [];
  #logAdded: boolean[] = [];
  #logStart = 0;
  readonly #cache = new Map<string, CachedSketch>();
  #buckets: Buckets | null = null;

  constructor(ids: Iterable<bigint> = []) {
    for (const id of ids) {
      checkId(id);
      this.#members.add(id);
    }
  }

  get size(): number {
    return this.#members.size;
  }

  /** The number of changes so far. */
  get version(): number {
    return this.#version;
  }

  has(id: bigint): boolean {
    return this.#members.has(id);
  }

  add(id: bigint): boolean {
    checkId(id);
    if (this.#members.has(id)) return false;
    this.#members.add(id);
    this.#changed(id, true);
    return true;
  }

  delete(id: bigint): boolean {
    if (!this.#members.delete(id)) return false;
    this.#changed(id, false);
    return true;
  }

  #changed(id: bigint, added: boolean): void {
    this.#log.push(id);
    this.#logAdded.push(added);
    this.#version++;
    if (this.#log.length > Math.max(MIN_LOG, this.#members.size >>> 2)) {
      // Forget the older half: sketches and snapshots older than that are rebuilt instead.
      const half = this.#log.length >>> 1;
      this.#log = this.#log.slice(half);
      this.#logAdded = this.#logAdded.slice(half);
      this.#logStart += half;
    }
  }

  inRange(depth: number, prefix: bigint): Iterable<bigint> {
    return sliceRange(this.sorted(), depth, prefix);
  }

  /** The ids in ascending order; a new array after a change (copy on write). */
  sorted(): BigUint64Array {
    const old = this.#sorted;
    if (old && this.#sortedVersion === this.#version) return old;
    const since = this.#version - this.#sortedVersion;
    this.#sorted = old && this.#sortedVersion >= this.#logStart && since <= (old.length >>> 3) + 64 ? this.#merged(old) : BigUint64Array.from(this.#members).sort();
    this.#sortedVersion = this.#version;
    return this.#sorted;
  }

  /** The sorted array `old` (at #sortedVersion) with the logged changes since merged in. */
  #merged(old: BigUint64Array): BigUint64Array {
    const touched = new Set<bigint>();
    for (let i = this.#sortedVersion - this.#logStart; i < this.#log.length; i++) touched.add(this.#log[i]!);
    const adds: bigint[] = [];
    const removed = new Set<bigint>();
    for (const id of touched) {
      const was = sortedHas(old, id);
      const is = this.#members.has(id);
      if (is && !was) adds.push(id);
      else if (was && !is) removed.add(id);
    }
    adds.sort((a, b) => (a < b ? -1 : 1));
    const out = new BigUint64Array(old.length + adds.length - removed.size);
    let k = 0;
    let a = 0;
    for (let i = 0; i < old.length; i++) {
      const x = old[i]!;
      while (a < adds.length && adds[a]! < x) out[k++] = adds[a++]!;
      if (removed.size === 0 || !removed.has(x)) out[k++] = x;
    }
    while (a < adds.length) out[k++] = adds[a++]!;
    return out;
  }

  /**
   * Count, checksum and the first `capacity` syndromes of a range as the set was at `version`
   * (an earlier version or the current one), and the products spent; null when the changes
   * since `version` are forgotten. The cached sketch grows to at least twice its capacity.
   */
  rangeSketch(version: number, depth: number, prefix: bigint, capacity: number): (RangeSummary & { products: number }) | null {
    if (version < this.#logStart || version > this.#version) return null;
    const out = depth <= BUCKET_BITS && (this.#buckets || this.#members.size >= BUCKETS_FROM) ? this.#fromBuckets(depth, prefix, capacity) : this.#fromCache(depth, prefix, capacity);
    // Undo the changes after `version`.
    for (let v = version; v < this.#version; v++) {
      const id = this.#log[v - this.#logStart]!;
      if (!inRange(id, depth, prefix)) continue;
      toggle(out, id, this.#logAdded[v - this.#logStart]! ? -1 : 1);
      out.products += capacity;
    }
    return out;
  }

  /**
   * A range of depth ≤ BUCKET_BITS of a large set, now: the xor of the sketches of the
   * 2^BUCKET_BITS buckets (ids by their top bits) it covers. The buckets are built once over the
   * whole set, kept up to date through the log, and grown when a session asks for more (to
   * twice their capacity, up to the default maxDecodeCapacity, or to what was asked).
   */
  #fromBuckets(depth: number, prefix: bigint, capacity: number): RangeSummary & { capacity: number; products: number } {
    let b = this.#buckets;
    let products = 0;
    if (b && b.version < this.#logStart) b = null;
    if (!b) {
      const words = toWordArray(this.sorted());
      const c = Math.min(MAX_SKETCH_CAPACITY, Math.max(capacity, 1));
      b = buildBuckets(words, this.#version, c);
      products += (words.length / 2) * c;
      this.#buckets = b;
    } else {
      for (let v = b.version; v < this.#version; v++) {
        toggleBucket(b, this.#log[v - this.#logStart]!, this.#logAdded[v - this.#logStart]!);
        products += b.capacity;
      }
      b.version = this.#version;
      if (b.capacity < capacity) products += growBuckets(b, () => toWordArray(this.sorted()), Math.max(capacity, Math.min(DEFAULT_MAX_DECODE_CAPACITY, 2 * b.capacity)));
    }
    const span = 1 << (BUCKET_BITS - depth);
    const first = Number(prefix) * span;
    const c = b.capacity;
    const syndromes = new Uint32Array(2 * capacity);
    let count = 0;
    let checksum = 0;
    for (let k = first; k < first + span; k++) {
      count += b.counts[k]!;
      checksum ^= b.checksums[k]!;
      const at = 2 * c * k;
      for (let i = 0; i < 2 * capacity; i++) syndromes[i]! ^= b.syndromes[at + i]!;
    }
    return { count, checksum: checksum >>> 0, syndromes, capacity, products };
  }

  /** A range now, from the cache of range sketches (built over the range's ids on a miss). */
  #fromCache(depth: number, prefix: bigint, capacity: number): RangeSummary & { capacity: number; products: number } {
    const key = rangeKey(depth, prefix);
    let entry = this.#cache.get(key);
    let products = 0;
    if (entry && entry.version < this.#logStart) {
      this.#cache.delete(key);
      entry = undefined;
    }
    if (entry) {
      this.#cache.delete(key); // re-inserted below: the map's order is least recently used first
      for (let v = entry.version; v < this.#version; v++) {
        const id = this.#log[v - this.#logStart]!;
        if (!inRange(id, depth, prefix)) continue;
        const added = this.#logAdded[v - this.#logStart]!;
        toggle(entry, id, added ? 1 : -1, entry.powers ? NEXT_POWER : undefined);
        if (added && entry.powers) appendState(entry);
        else entry.powers = entry.squares = null;
        products += entry.capacity;
      }
      entry.version = this.#version;
    } else {
      const ids = toWordArray(sliceRange(this.sorted(), depth, prefix));
      let checksum = 0;
      for (let i = 0; i < ids.length; i += 2) checksum ^= idHash(ids[i]!, ids[i + 1]!);
      entry = { depth, prefix, count: ids.length / 2, checksum: checksum >>> 0, capacity: 0, syndromes: new Uint32Array(0), version: this.#version, powers: null, squares: null, stateIds: 0 };
    }
    if (this.#cache.size >= CACHED_RANGES) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, entry);
    if (entry.capacity < capacity) {
      products += growEntry(entry, () => toWordArray(sliceRange(this.sorted(), depth, prefix)), capacity);
      // Growth state costs 16 bytes per id: bound it to a few times the set.
      let words = 0;
      for (const e of this.#cache.values()) words += e.powers ? 2 * e.powers.length : 0;
      if (words > 8 * this.#members.size + 65_536) for (const e of this.#cache.values()) if (e !== entry) e.powers = e.squares = null;
    }
    return { count: entry.count, checksum: entry.checksum, syndromes: entry.syndromes.slice(0, 2 * capacity), capacity, products };
  }
}

const NEXT_POWER = new Uint32Array(4);

/** Toggle `id` in a range summary: its powers into the syndromes, its hash into the checksum. */
function toggle(s: { count: number; checksum: number; capacity: number; syndromes: Uint32Array }, id: bigint, countDelta: number, next?: Uint32Array): void {
  const hi = Number(id >> 32n);
  const lo = Number(id & 0xffffffffn);
  addPowerSums(s.syndromes, 0, s.capacity, hi, lo, next);
  s.count += countDelta;
  s.checksum = (s.checksum ^ idHash(hi, lo)) >>> 0;
}

/** Append the id just toggled in (its next power and square in NEXT_POWER) to an entry's growth state. */
function appendState(entry: CachedSketch): void {
  let { powers, squares } = entry;
  const at = 2 * entry.stateIds;
  if (at + 2 > powers!.length) {
    const size = Math.max(16, 2 * powers!.length);
    powers = new Uint32Array(size);
    powers.set(entry.powers!);
    squares = new Uint32Array(size);
    squares.set(entry.squares!);
    entry.powers = powers;
    entry.squares = squares;
  }
  powers![at] = NEXT_POWER[0]!;
  powers![at + 1] = NEXT_POWER[1]!;
  squares![at] = NEXT_POWER[2]!;
  squares![at + 1] = NEXT_POWER[3]!;
  entry.stateIds++;
}

/** Grow a cached sketch to `capacity` over its ids (word pairs); returns the products spent. */
function growEntry(entry: CachedSketch, wordsOf: () => Uint32Array, capacity: number): number {
  const from = entry.capacity;
  const syndromes = new Uint32Array(2 * capacity);
  syndromes.set(entry.syndromes);
  if (!entry.powers || !entry.squares) {
    const words = wordsOf();
    const squares = new Uint32Array(words.length);
    const powers = new Uint32Array(words.length);
    for (let i = 0; i < words.length; i += 2) {
      sq64(squares, i, words[i]!, words[i + 1]!);
      if (from === 0) {
        powers[i] = words[i]!;
        powers[i + 1] = words[i + 1]!;
      } else powOdd(powers, i, words[i]!, words[i + 1]!, squares[i]!, squares[i + 1]!, from);
    }
    entry.powers = powers;
    entry.squares = squares;
    entry.stateIds = words.length / 2;
  }
  const n = 2 * entry.stateIds;
  accumulatePowers(syndromes, from, capacity, entry.powers.subarray(0, n), entry.squares.subarray(0, n));
  entry.syndromes = syndromes;
  entry.capacity = capacity;
  return entry.count * (capacity - from);
}

function sortedHas(sorted: BigUint64Array, id: bigint): boolean {
  const i = lowerBound(sorted, id);
  return i < sorted.length && sorted[i] === id;
}

/** A sorted snapshot of any IdSet: free for sets from createIdSet, O(n log n) otherwise. */
function snapshotOf(set: IdSet): BigUint64Array {
  const own = (set as Partial<MutableIdSet>).sorted;
  if (typeof own === 'function') return own.call(set);
  return BigUint64Array.from(set.inRange(0, 0n)).sort();
}

// ---------------------------------------------------------------------------------------
// Checksums

function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of an id, not linear over GF(2), so it checks what the sketch cannot. */
function idHash(hi: number, lo: number): number {
  return mix32(lo ^ mix32(hi ^ 0x9e3779b9));
}

function bigHash(id: bigint): number {
  return idHash(Number(id >> 32n), Number(id & 0xffffffffn));
}

// ---------------------------------------------------------------------------------------
// Codec

/** A range of the id space: ids whose top `depth` bits equal `prefix`. */
export interface RangeRef {
  depth: number;
  prefix: bigint;
}

/** Syndromes [from, from + k) of a range's sketch; count and checksum come with from = 0. */
export interface SketchEntry extends RangeRef {
  from: number;
  count?: number;
  checksum?: number;
  /** k syndromes as (hi, lo) word pairs. */
  syndromes: Uint32Array;
}

/** A request for syndromes [from, to) of a range. */
export interface RequestEntry extends RangeRef {
  from: number;
  to: number;
}

export type ReconcileMessage =
  | { type: 'open'; entries: [SketchEntry] }
  | { type: 'sketch'; entries: SketchEntry[] }
  | { type: 'request'; entries: RequestEntry[] }
  | { type: 'done' };

function prefixBytes(depth: number): number {
  return (depth + 7) >>> 3;
}

function writeRange(w: ByteWriter, range: RangeRef): void {
  w.u8(range.depth);
  for (let i = prefixBytes(range.depth) - 1; i >= 0; i--) w.u8(Number((range.prefix >> BigInt(8 * i)) & 0xffn));
}

function readRange(r: ByteReader): RangeRef {
  const depth = r.u8();
  if (depth > 64) throw malformed(`range depth ${depth} exceeds 64`);
  let prefix = 0n;
  for (let i = 0; i < prefixBytes(depth); i++) prefix = (prefix << 8n) | BigInt(r.u8());
  if (prefix >> BigInt(depth) !== 0n) throw malformed(`range prefix has more than ${depth} bits`);
  return { depth, prefix };
}

function malformed(message: string): MeshError {
  return new MeshError('RECONCILE_MALFORMED', `reconcile message: ${message}`);
}

function sketchEntryHeaderLength(entry: RangeRef & { from: number; count?: number }, k: number): number {
  const counted = entry.from === 0 ? varintLength(entry.count ?? 0) + 4 : 0;
  return 1 + prefixBytes(entry.depth) + varintLength(entry.from) + counted + varintLength(k);
}

/** Bytes of a message header: version and type. */
const MESSAGE_HEADER = 1;

function header(type: MessageType): number {
  return (RECONCILE_VERSION << 4) | type;
}

export function encodeReconcileMessage(message: ReconcileMessage): Uint8Array {
  const w = new ByteWriter(64);
  switch (message.type) {
    case 'done':
      w.u8(header(MessageType.Done));
      return w.finish();
    case 'request':
      w.u8(header(MessageType.Request));
      for (const e of message.entries) {
        writeRange(w, e);
        w.varint(e.from).varint(e.to);
      }
      return w.finish();
    case 'open':
    case 'sketch':
      w.u8(header(message.type === 'open' ? MessageType.Open : MessageType.Sketch));
      for (const e of message.entries) writeSketchEntry(w, e);
      return w.finish();
  }
}

function writeSketchEntry(w: ByteWriter, e: SketchEntry): void {
  writeRange(w, e);
  w.varint(e.from);
  if (e.from === 0) w.varint(e.count ?? 0).u32(e.checksum ?? 0);
  const k = e.syndromes.length / 2;
  w.varint(k);
  for (let i = 0; i < 2 * k; i++) w.u32(e.syndromes[i]!);
}

/** Decode untrusted bytes; throws MeshError RECONCILE_MALFORMED on anything invalid. */
export function decodeReconcileMessage(bytes: Uint8Array): ReconcileMessage {
  if (!(bytes instanceof Uint8Array)) throw malformed('not bytes');
  try {
    return decodeUnchecked(new ByteReader(bytes, 'reconcile message', 'RECONCILE_MALFORMED'));
  } catch (err) {
    if (err instanceof MeshError && err.code.startsWith('RECONCILE_')) throw err;
    throw new MeshError('RECONCILE_MALFORMED', `reconcile message: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function decodeUnchecked(r: ByteReader): ReconcileMessage {
  const first = r.u8();
  const version = first >>> 4;
  const type = first & 0x0f;
  if (version !== RECONCILE_VERSION) throw new MeshError('RECONCILE_VERSION', `unknown reconcile version ${version}`);
  if (type === MessageType.Done) {
    r.end();
    return { type: 'done' };
  }
  if (type !== MessageType.Open && type !== MessageType.Sketch && type !== MessageType.Request) throw malformed(`unknown type ${type}`);
  if (r.remaining === 0) throw malformed('no entries');
  const more = (count: number): boolean => {
    if (r.remaining === 0) return false;
    if (count >= MAX_ENTRIES) throw malformed(`more than ${MAX_ENTRIES} entries`);
    return true;
  };
  if (type === MessageType.Request) {
    const entries: RequestEntry[] = [];
    while (more(entries.length)) {
      const range = readRange(r);
      const from = r.varint();
      const to = r.varint();
      if (from >= to || to > MAX_SKETCH_CAPACITY) throw malformed(`bad syndrome interval [${from}, ${to})`);
      entries.push({ ...range, from, to });
    }
    return { type: 'request', entries };
  }
  const entries: SketchEntry[] = [];
  while (more(entries.length)) entries.push(readSketchEntry(r));
  if (type === MessageType.Open && entries.length !== 1) throw malformed('an opening has one entry');
  return type === MessageType.Open ? { type: 'open', entries: [entries[0]!] } : { type: 'sketch', entries };
}

function readSketchEntry(r: ByteReader): SketchEntry {
  const range = readRange(r);
  const from = r.varint();
  const entry: SketchEntry = { ...range, from, syndromes: new Uint32Array(0) };
  if (from === 0) {
    entry.count = r.varint();
    entry.checksum = r.u32();
  }
  const k = r.varint();
  if (from + k > MAX_SKETCH_CAPACITY) throw malformed(`syndromes beyond ${MAX_SKETCH_CAPACITY}`);
  if (8 * k > r.remaining) throw malformed('truncated syndromes');
  const syndromes = new Uint32Array(2 * k);
  for (let i = 0; i < 2 * k; i++) syndromes[i] = r.u32();
  entry.syndromes = syndromes;
  return entry;
}

// ---------------------------------------------------------------------------------------
// Sketches of our own ids, grown on demand

/** Where a RangeSketch gets its syndromes when its set keeps sketches: the set's cache. */
interface SketchSource {
  set: SketchedIdSet;
  version: number;
  range: RangeRef;
}

/**
 * Our ids in one range with their sketch so far. Either from the set's cache of sketches
 * (`source`, see SketchedIdSet), or computed here: growing costs one product per id and
 * syndrome. A sketch whose source has forgotten its version computes from `words()` instead.
 */
class RangeSketch {
  readonly count: number;
  readonly checksum: number;
  syndromes: Uint32Array = new Uint32Array(0);
  capacity = 0;
  /** Per id: its next odd power and its square, as word pairs; filled on first growth. */
  private powers: Uint32Array | null = null;
  private squares: Uint32Array | null = null;
  #words: Uint32Array | null;

  constructor(
    private readonly wordsOf: () => Uint32Array,
    private source: SketchSource | null = null,
  ) {
    const summary = source?.set.rangeSketch(source.version, source.range.depth, source.range.prefix, 0);
    if (summary) {
      this.#words = null;
      this.count = summary.count;
      this.checksum = summary.checksum;
      return;
    }
    this.source = null;
    const words = wordsOf();
    this.#words = words;
    this.count = words.length / 2;
    let checksum = 0;
    for (let i = 0; i < words.length; i += 2) checksum ^= idHash(words[i]!, words[i + 1]!);
    this.checksum = checksum >>> 0;
  }

  /** Bytes this cache holds (for bounding it). */
  get weight(): number {
    return this.count;
  }

  growTo(capacity: number): void {
    if (capacity <= this.capacity) return;
    const { source } = this;
    if (source) {
      const summary = source.set.rangeSketch(source.version, source.range.depth, source.range.prefix, capacity);
      if (summary) {
        this.syndromes = summary.syndromes;
        this.capacity = capacity;
        return;
      }
      // The set forgot our version: compute from the snapshot, from the start.
      this.source = null;
      this.#words = this.wordsOf();
      this.syndromes = new Uint32Array(0);
      this.capacity = 0;
    }
    const words = this.#words!;
    const syndromes = new Uint32Array(2 * capacity);
    syndromes.set(this.syndromes);
    if (!this.powers || !this.squares) {
      this.powers = new Uint32Array(words.length);
      this.squares = new Uint32Array(words.length);
      for (let i = 0; i < words.length; i += 2) {
        sq64(this.squares, i, words[i]!, words[i + 1]!);
        this.powers[i] = words[i]!;
        this.powers[i + 1] = words[i + 1]!;
      }
    }
    accumulatePowers(syndromes, this.capacity, capacity, this.powers, this.squares);
    this.syndromes = syndromes;
    this.capacity = capacity;
  }
}

/** (hi, lo) words of sorted ids (a copy: the snapshot stays untouched). */
function toWordArray(ids: BigUint64Array): Uint32Array {
  const words = new Uint32Array(2 * ids.length);
  if (LITTLE_ENDIAN) {
    // Read the 64-bit ids as 32-bit halves, low half first, without BigInt arithmetic.
    const halves = new Uint32Array(ids.buffer, ids.byteOffset, 2 * ids.length);
    for (let i = 0; i < halves.length; i += 2) {
      words[i] = halves[i + 1]!;
      words[i + 1] = halves[i]!;
    }
    return words;
  }
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    words[2 * i] = Number(id >> 32n);
    words[2 * i + 1] = Number(id & 0xffffffffn);
  }
  return words;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function rangeKey(depth: number, prefix: bigint): string {
  return `${depth}:${prefix.toString(16)}`;
}

function inRange(id: bigint, depth: number, prefix: bigint): boolean {
  return depth === 0 || id >> BigInt(64 - depth) === prefix;
}

/** a ⊆ b */
function within(a: RangeRef, b: RangeRef): boolean {
  return a.depth >= b.depth && a.prefix >> BigInt(a.depth - b.depth) === b.prefix;
}

// ---------------------------------------------------------------------------------------
// The session

export interface ReconcilerOptions {
  /** Largest message, in bytes (e.g. 200 for LoRa, 1100 for UDP); at least MIN_MESSAGE_BYTES. */
  maxMessageBytes: number;
  /** Most syndromes per range, which bounds decode time (~c^2 products): 16..MAX_DECODE_CAPACITY, default 64. Both peers should use the same. */
  maxDecodeCapacity?: number;
  /** Most bytes in and out in one session; default 256 KiB. */
  maxSessionBytes?: number;
}

export interface ReceiveResult {
  /** Messages for the peer, each within maxMessageBytes. */
  replies: Uint8Array[];
  /** Ids found in this call that we hold and the peer lacks (responder only). */
  theyLack: bigint[];
  /** Ids found in this call that the peer holds and we lack (responder only). */
  weLack: bigint[];
  /** The session is over: the responder knows the whole difference. */
  done: boolean;
}

type Mode = 'grow' | 'probing' | 'split' | 'closed';

/** What the responder knows about one range. */
interface Range extends RangeRef {
  key: string;
  mode: Mode;
  /** Syndromes asked of the peer so far, and received. */
  requested: number;
  received: number;
  peer: Uint32Array;
  peerCount: number;
  peerChecksum: number;
  /** Expected differences in the range, once known. */
  estimate?: number;
  probe?: Range;
  children: Range[];
  /** The last child was asked for explicitly (the range's own sketch was not enough). */
  lastChildRequested: boolean;
  splitBits: number;
  /** |count difference| of the part not yet found: a lower bound of what remains, exact if one side holds it all. */
  unbalance: number;
  /** Something changed (syndromes arrived, elements inside were found) since the last decode. */
  dirty: boolean;
}

/**
 * One reconciliation session with one peer. Both peers use this class: the initiator calls
 * `open()` and answers requests; the responder passes the opening to `receive()`, drives the
 * session and learns the difference (see the file header).
 */
export class Reconciler {
  readonly #set: IdSet;
  readonly #maxMessageBytes: number;
  readonly #maxCapacity: number;
  readonly #maxSessionBytes: number;
  #snapshot: BigUint64Array | null = null;
  /** The version of a SketchedIdSet at the snapshot: our sketches come from its cache. */
  #setVersion = -1;
  #role: 'new' | 'initiator' | 'responder' = 'new';
  #done = false;
  #bytes = 0;
  /** Our sketches by range (initiator: cache of answered ranges; responder: ranges in play). */
  readonly #sketches = new Map<string, RangeSketch>();
  #cachedWeight = 0;
  /** Products spent on our sketches (ids × syndromes), against #maxWork. */
  #work = 0;
  #maxWork = 0;
  // Responder state.
  readonly #ranges = new Map<string, Range>();
  /** Elements of the difference found so far: true = we hold it (they lack it). */
  readonly #found = new Map<bigint, boolean>();
  #requests: RequestEntry[] = [];
  /** Syndromes asked for and not yet received, over all ranges. */
  #outstanding = 0;

  constructor(set: IdSet, options: ReconcilerOptions) {
    if (!set || typeof set.has !== 'function' || typeof set.inRange !== 'function') throw new MeshError('RECONCILE_OPTIONS', 'an IdSet is required');
    const { maxMessageBytes, maxDecodeCapacity = DEFAULT_MAX_DECODE_CAPACITY, maxSessionBytes = DEFAULT_MAX_SESSION_BYTES } = options ?? {};
    if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < MIN_MESSAGE_BYTES) {
      throw new MeshError('RECONCILE_OPTIONS', `maxMessageBytes must be an integer ≥ ${MIN_MESSAGE_BYTES}`);
    }
    if (!Number.isInteger(maxDecodeCapacity) || maxDecodeCapacity < PROBE_AFTER || maxDecodeCapacity > MAX_DECODE_CAPACITY) {
      throw new MeshError('RECONCILE_OPTIONS', `maxDecodeCapacity must be an integer in ${PROBE_AFTER}..${MAX_DECODE_CAPACITY}`);
    }
    if (!Number.isInteger(maxSessionBytes) || maxSessionBytes < maxMessageBytes) {
      throw new MeshError('RECONCILE_OPTIONS', 'maxSessionBytes must be an integer ≥ maxMessageBytes');
    }
    this.#set = set;
    this.#maxMessageBytes = maxMessageBytes;
    this.#maxCapacity = maxDecodeCapacity;
    this.#maxSessionBytes = maxSessionBytes;
  }

  /** Bytes sent and received so far. */
  get sessionBytes(): number {
    return this.#bytes;
  }

  /** Ranges the responder tracks (bounded by MAX_RANGES). */
  get rangeCount(): number {
    return this.#ranges.size;
  }

  get done(): boolean {
    return this.#done;
  }

  /** The opening: the count, checksum and first syndrome of the whole id space. */
  open(syndromes = 1): Uint8Array[] {
    if (this.#role !== 'new') throw new MeshError('RECONCILE_STATE', 'open() starts a session; this one has started');
    // An opening of c syndromes settles a difference of up to c in one message (no round trips).
    const c = Math.max(1, Math.min(Math.floor(syndromes), this.#maxCapacity, Math.floor((this.#maxMessageBytes - OPEN_OVERHEAD_BYTES) / 8)));
    this.#role = 'initiator';
    const sketch = this.#ourSketch({ depth: 0, prefix: 0n }, c);
    const message = encodeReconcileMessage({
      type: 'open',
      entries: [{ depth: 0, prefix: 0n, from: 0, count: sketch.count, checksum: sketch.checksum, syndromes: sketch.syndromes.slice(0, 2 * c) }],
    });
    this.#count(message.length);
    return [message];
  }

  /** Handle one message from the peer. Throws MeshError RECONCILE_* on bad or unexpected input. */
  receive(bytes: Uint8Array): ReceiveResult {
    if (this.#done) throw new MeshError('RECONCILE_STATE', 'the session is over');
    const message = decodeReconcileMessage(bytes);
    this.#count(bytes.length);
    switch (message.type) {
      case 'open':
        if (this.#role !== 'new') throw unexpected('an opening in a running session');
        this.#role = 'responder';
        {
          // The opening carries 1..maxDecodeCapacity syndromes of the whole space.
          const k = (message.entries[0]?.syndromes.length ?? 0) / 2;
          if (k < 1 || k > this.#maxCapacity) throw new MeshError('RECONCILE_CAPACITY', `an opening of ${k} syndromes (1..${this.#maxCapacity})`);
          this.#addRange({ depth: 0, prefix: 0n }, k);
          this.#outstanding = k; // the opening's syndromes
        }
        return this.#respond(message.entries);
      case 'sketch':
        if (this.#role !== 'responder') throw unexpected('sketches go to the responder');
        return this.#respond(message.entries);
      case 'request':
        if (this.#role !== 'initiator') throw unexpected('requests go to the initiator');
        return this.#answer(message.entries);
      case 'done':
        if (this.#role !== 'initiator') throw unexpected('DONE goes to the initiator');
        this.#done = true;
        this.#sketches.clear();
        return { replies: [], theyLack: [], weLack: [], done: true };
    }
  }

  #count(n: number): void {
    this.#bytes += n;
    if (this.#bytes > this.#maxSessionBytes) {
      throw new MeshError('RECONCILE_BUDGET', `session exceeds ${this.#maxSessionBytes} bytes`);
    }
  }

  #ids(): BigUint64Array {
    if (!this.#snapshot) {
      this.#snapshot = snapshotOf(this.#set);
      if (this.#set instanceof SketchedIdSet) this.#setVersion = this.#set.version;
      this.#maxWork = WORK_FACTOR * (this.#snapshot.length + 1024) * this.#maxCapacity;
    }
    return this.#snapshot;
  }

  /** Our sketch of a range, grown to `capacity`. The cache is bounded to a few times the set. */
  #ourSketch(range: RangeRef, capacity: number): RangeSketch {
    const key = rangeKey(range.depth, range.prefix);
    let sketch = this.#sketches.get(key);
    if (!sketch) {
      const ids = sliceRange(this.#ids(), range.depth, range.prefix);
      if (this.#role === 'initiator' && this.#cachedWeight + ids.length > 4 * this.#ids().length + 4096) {
        this.#sketches.clear();
        this.#cachedWeight = 0;
      }
      const source = this.#setVersion >= 0 ? { set: this.#set as SketchedIdSet, version: this.#setVersion, range: { depth: range.depth, prefix: range.prefix } } : null;
      sketch = new RangeSketch(() => toWordArray(ids), source);
      this.#sketches.set(key, sketch);
      this.#cachedWeight += sketch.weight;
    }
    this.#work += Math.max(0, capacity - sketch.capacity) * sketch.count;
    if (this.#work > this.#maxWork) {
      throw new MeshError('RECONCILE_BUDGET', 'session exceeds its work budget (a peer asking for the same sketches again and again)');
    }
    sketch.growTo(capacity);
    return sketch;
  }

  // -------------------------------------------------------------------------------------
  // Initiator

  #answer(requests: RequestEntry[]): ReceiveResult {
    const packer = new SketchPacker(this.#maxMessageBytes);
    for (const request of requests) {
      if (request.to > this.#maxCapacity) {
        throw new MeshError('RECONCILE_CAPACITY', `request for syndrome ${request.to} beyond the capacity of ${this.#maxCapacity}`);
      }
      const sketch = this.#ourSketch(request, request.to);
      packer.add(request, sketch, request.from, request.to);
    }
    const replies = packer.finish();
    for (const reply of replies) this.#count(reply.length);
    return { replies, theyLack: [], weLack: [], done: false };
  }

  // -------------------------------------------------------------------------------------
  // Responder

  #addRange(ref: RangeRef, capacity: number, estimate?: number): Range {
    if (this.#ranges.size >= MAX_RANGES) throw new MeshError('RECONCILE_LIMIT', `more than ${MAX_RANGES} ranges in one session`);
    const range: Range = {
      ...ref,
      key: rangeKey(ref.depth, ref.prefix),
      mode: 'grow',
      requested: capacity,
      received: 0,
      peer: new Uint32Array(0),
      peerCount: -1,
      peerChecksum: 0,
      children: [],
      lastChildRequested: false,
      splitBits: 0,
      dirty: false,
      unbalance: 0,
      ...(estimate === undefined ? {} : { estimate }),
    };
    this.#ranges.set(range.key, range);
    return range;
  }

  #request(range: Range, to: number): void {
    to = Math.min(to, this.#maxCapacity);
    if (to <= range.requested) throw new MeshError('RECONCILE_CAPACITY', `range ${range.key} needs more than ${this.#maxCapacity} syndromes`);
    this.#requests.push({ depth: range.depth, prefix: range.prefix, from: range.requested, to });
    range.requested = to;
  }

  #newChild(ref: RangeRef, capacity: number, estimate?: number): Range {
    const existing = this.#ranges.get(rangeKey(ref.depth, ref.prefix));
    if (existing) return existing;
    const child = this.#addRange(ref, Math.max(1, Math.min(capacity, this.#maxCapacity)), estimate);
    this.#requests.push({ depth: ref.depth, prefix: ref.prefix, from: 0, to: child.requested });
    return child;
  }

  #respond(entries: SketchEntry[]): ReceiveResult {
    for (const entry of entries) this.#accept(entry);
    const theyLack: bigint[] = [];
    const weLack: bigint[] = [];
    this.#settle(theyLack, weLack);
    const top = this.#ranges.get(rangeKey(0, 0n))!;
    if (top.mode === 'closed') this.#requests = []; // everything is known
    if (top.mode === 'closed' && this.#outstanding > 0) {
      // Wait for the replies still on their way, so that DONE is the session's last word.
      return { replies: [], theyLack, weLack, done: false };
    }
    if (top.mode === 'closed') {
      this.#done = true;
      this.#ranges.clear();
      this.#sketches.clear();
      const done = encodeReconcileMessage({ type: 'done' });
      this.#count(done.length);
      return { replies: [done], theyLack, weLack, done: true };
    }
    const replies = packRequests(this.#requests, this.#maxMessageBytes);
    for (const request of this.#requests) this.#outstanding += request.to - request.from;
    this.#requests = [];
    for (const reply of replies) this.#count(reply.length);
    return { replies, theyLack, weLack, done: false };
  }

  /** Store the peer's syndromes for a range we asked about. */
  #accept(entry: SketchEntry): void {
    const range = this.#ranges.get(rangeKey(entry.depth, entry.prefix));
    if (!range) throw unexpected(`syndromes for range ${rangeKey(entry.depth, entry.prefix)} nobody asked for`);
    const k = entry.syndromes.length / 2;
    if (entry.from !== range.received || entry.from + k > range.requested) throw unexpected(`syndromes [${entry.from}, ${entry.from + k}) for range ${range.key}`);
    this.#outstanding -= k;
    if (range.mode === 'closed') {
      range.received += k; // decoded meanwhile, as part of a larger range: only counted
      return;
    }
    if (entry.from === 0) {
      range.peerCount = entry.count!;
      range.peerChecksum = entry.checksum!;
    }
    const peer = new Uint32Array(2 * (entry.from + k));
    peer.set(range.peer);
    peer.set(entry.syndromes, 2 * entry.from);
    range.peer = peer;
    range.received = entry.from + k;
    range.dirty = true;
  }

  /** Decode what can be decoded, then decide the next step for every stalled range. */
  #settle(theyLack: bigint[], weLack: bigint[]): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const range of this.#ranges.values()) {
        if (range.mode === 'closed' || !range.dirty || range.received < range.requested || range.peerCount < 0) continue;
        if (this.#waiting(range)) continue; // decoding costs ~c² products: only when it can succeed
        range.dirty = false;
        if (this.#tryDecode(range, theyLack, weLack)) changed = true;
      }
    }
    for (const range of [...this.#ranges.values()]) {
      if (range.mode === 'closed' || range.received < range.requested) continue;
      this.#step(range);
    }
  }

  /** A range that waits for its probe or its children before it is worth decoding again. */
  #waiting(range: Range): boolean {
    if (range.mode === 'probing') return range.probe!.mode !== 'closed';
    if (range.mode === 'split') return range.children.some((child) => child.mode !== 'closed');
    return false;
  }

  /** Decode a range's sketch minus what we found already; true if it closed. */
  #tryDecode(range: Range, theyLack: bigint[], weLack: bigint[]): boolean {
    const c = range.received;
    const ours = this.#ourSketch(range, c);
    const diff = new Sketch(c);
    for (let i = 0; i < 2 * c; i++) diff.syndromes[i] = range.peer[i]! ^ ours.syndromes[i]!;
    // Counts and checksums of the part of the difference not yet found.
    let balance = range.peerCount - ours.count;
    let checksum = range.peerChecksum ^ ours.checksum;
    for (const [id, ourId] of this.#found) {
      if (!inRange(id, range.depth, range.prefix)) continue;
      diff.add(id);
      balance += ourId ? 1 : -1;
      checksum ^= bigHash(id);
    }
    range.unbalance = Math.abs(balance);
    // The new elements are (theirs − ours) = balance apart and (theirs + ours) in number.
    const residual = balance;
    const elements = diff.decode(c, (count) => count >= Math.abs(residual) && (count - residual) % 2 === 0);
    if (!elements) return false;
    for (const id of elements) {
      if (!inRange(id, range.depth, range.prefix) || this.#found.has(id)) return false;
      balance += this.#snapshotHas(id) ? 1 : -1;
      checksum ^= bigHash(id);
    }
    if (balance !== 0 || checksum >>> 0 !== 0) return false;
    for (const id of elements) {
      const ourId = this.#snapshotHas(id);
      this.#found.set(id, ourId);
      (ourId ? theyLack : weLack).push(id);
    }
    this.#close(range);
    if (elements.length > 0) {
      for (const other of this.#ranges.values()) if (other.mode !== 'closed' && within(range, other)) other.dirty = true;
    }
    return true;
  }

  #snapshotHas(id: bigint): boolean {
    const ids = this.#ids();
    const i = lowerBound(ids, id);
    return i < ids.length && ids[i] === id;
  }

  /** A decoded range is known completely, and so is every range inside it. */
  #close(range: Range): void {
    for (const other of this.#ranges.values()) {
      if (other.mode === 'closed' || !within(other, range)) continue;
      other.mode = 'closed';
      other.peer = new Uint32Array(0);
      this.#sketches.delete(other.key);
    }
  }

  /** A range whose decode failed and who waits for nothing: grow, probe or split it. */
  #step(range: Range): void {
    const c = range.received;
    switch (range.mode) {
      case 'grow': {
        const limit = range.estimate === undefined ? PROBE_AFTER : this.#maxCapacity;
        if (range.unbalance > 0.75 * this.#maxCapacity) return this.#split(range, Math.max(range.estimate ?? 0, range.unbalance + this.#foundIn(range)));
        if (range.unbalance > c) return this.#request(range, range.unbalance);
        if (c < limit || (range.depth + PROBE_BITS > 64 && c < this.#maxCapacity)) return this.#request(range, grow(c));
        if (range.probe) return this.#split(range, Math.max(range.estimate ?? 0, 2 * c));
        if (range.depth + PROBE_BITS > 64) throw new MeshError('RECONCILE_CAPACITY', `range ${range.key} cannot be probed or grown further`);
        range.mode = 'probing';
        const probe = { depth: range.depth + PROBE_BITS, prefix: range.prefix << BigInt(PROBE_BITS) };
        range.probe = this.#newChild(probe, Math.max(2, Math.round(c / 2 ** PROBE_BITS)));
        return;
      }
      case 'probing':
        if (range.probe!.mode === 'closed') this.#plan(range);
        return;
      case 'split': {
        if (this.#waiting(range)) return;
        if (c < this.#maxCapacity) return this.#request(range, grow(c));
        if (range.lastChildRequested) throw new MeshError('RECONCILE_INCONSISTENT', `range ${range.key} does not add up`);
        range.lastChildRequested = true;
        const last = (range.prefix << BigInt(range.splitBits)) | ((1n << BigInt(range.splitBits)) - 1n);
        range.children.push(this.#newChild({ depth: range.depth + range.splitBits, prefix: last }, grow(0), range.estimate));
        return;
      }
      case 'closed':
        return;
    }
  }

  /** The probe of a range is done: estimate the range's difference and grow or split it. */
  #plan(range: Range): void {
    const c = range.received;
    const found = this.#foundIn(range);
    const probeFound = this.#foundIn(range.probe!);
    const estimate = Math.max(c + 1, found + range.unbalance, probeFound * 2 ** PROBE_BITS);
    range.estimate = estimate;
    const remaining = estimate - found;
    if (c < this.#maxCapacity && (remaining <= 0.75 * this.#maxCapacity || range.depth + 1 > 64)) {
      range.mode = 'grow';
      return this.#request(range, Math.max(grow(c), Math.round(0.9 * remaining)));
    }
    this.#split(range, estimate);
  }

  /** Ask for all children but the last; the range's own sketch stands for the last. */
  #split(range: Range, estimate: number): void {
    if (range.depth >= 64) throw new MeshError('RECONCILE_CAPACITY', `range ${range.key} cannot be split`);
    let bits = 1;
    while (estimate / 2 ** bits > this.#maxCapacity / 1.3 && range.depth + bits < 64 && bits < 8) bits++;
    range.mode = 'split';
    range.splitBits = bits;
    const share = estimate / 2 ** bits;
    for (let i = 0n; i < (1n << BigInt(bits)) - 1n; i++) {
      const ref = { depth: range.depth + bits, prefix: (range.prefix << BigInt(bits)) | i };
      if (range.probe && within(ref, range.probe)) continue; // fully known
      const expected = share - this.#foundIn(ref);
      range.children.push(this.#newChild(ref, Math.max(1, Math.round(0.9 * expected)), share));
    }
  }

  #foundIn(ref: RangeRef): number {
    let n = 0;
    for (const id of this.#found.keys()) if (inRange(id, ref.depth, ref.prefix)) n++;
    return n;
  }
}

/**
 * The next capacity of a growing range. A round costs about one syndrome in headers and a
 * step of s leaves about s/2 unused, so steps of about √(2c) balance the two.
 */
function grow(c: number): number {
  return c + Math.max(2, Math.round(Math.sqrt(2 * c)));
}

function unexpected(what: string): MeshError {
  return new MeshError('RECONCILE_UNEXPECTED', `unexpected reconcile message: ${what}`);
}

/** Packs syndrome runs into SKETCH messages of at most `maxBytes`, splitting runs as needed. */
class SketchPacker {
  readonly #messages: Uint8Array[] = [];
  #entries: SketchEntry[] = [];
  #size = MESSAGE_HEADER;

  constructor(readonly maxBytes: number) {}

  add(range: RangeRef, sketch: RangeSketch, from: number, to: number): void {
    while (from < to) {
      const base = { ...range, from, count: sketch.count };
      let room = this.maxBytes - this.#size - sketchEntryHeaderLength(base, to - from);
      if (room < 8 || this.#entries.length >= MAX_ENTRIES) {
        this.#flush();
        room = this.maxBytes - this.#size - sketchEntryHeaderLength(base, to - from);
      }
      const k = Math.max(1, Math.min(to - from, Math.floor(room / 8))); // ≥ 1: MIN_MESSAGE_BYTES leaves room for one
      const entry: SketchEntry = { ...range, from, syndromes: sketch.syndromes.slice(2 * from, 2 * (from + k)) };
      if (from === 0) {
        entry.count = sketch.count;
        entry.checksum = sketch.checksum;
      }
      this.#entries.push(entry);
      this.#size += sketchEntryHeaderLength(base, k) + 8 * k;
      from += k;
    }
  }

  #flush(): void {
    if (this.#entries.length === 0) return;
    this.#messages.push(encodeReconcileMessage({ type: 'sketch', entries: this.#entries }));
    this.#entries = [];
    this.#size = MESSAGE_HEADER;
  }

  finish(): Uint8Array[] {
    this.#flush();
    return this.#messages;
  }
}

/** Packs request entries into REQUEST messages of at most `maxBytes`. */
function packRequests(requests: RequestEntry[], maxBytes: number): Uint8Array[] {
  const messages: Uint8Array[] = [];
  let entries: RequestEntry[] = [];
  let size = MESSAGE_HEADER;
  for (const request of requests) {
    const length = 1 + prefixBytes(request.depth) + varintLength(request.from) + varintLength(request.to);
    if (size + length > maxBytes || entries.length >= MAX_ENTRIES) {
      messages.push(encodeReconcileMessage({ type: 'request', entries }));
      entries = [];
      size = MESSAGE_HEADER;
    }
    entries.push(request);
    size += length;
  }
  if (entries.length > 0) messages.push(encodeReconcileMessage({ type: 'request', entries }));
  return messages;
}
