/**
 * The household's durable record store, on an ordered key-value `StoreDatabase`: LevelDB on
 * disk in the daemon (`LevelDatabase`, or any abstract-level database passed to `open`),
 * `MemoryDatabase` in the simulator and tests; both run one contract suite
 * (test/mesh/record-store.contract.ts). Records given to `put` are already verified by the
 * caller; the store dedupes them, detects forks, enforces per-author quotas and expiry, and
 * keeps the indexes the rest of the mesh reads by.
 *
 * Key layout. Each area of the database is named by one letter (on LevelDB a sublevel, so a
 * key on disk is `!x!` followed by the binary key below). Keys are raw bytes, not hex: half
 * the size, no conversions, and big-endian integers sort in numeric order as bytes, which is
 * what the range scans need. Text keys and values (`!m!`, `!l!`) are UTF-8.
 *
 *   area  key                                          value
 *   !r!   id(32)                                       record bytes                  records
 *   !a!   author(8) feed(8) seq(u64)                   id(32)                        by author/feed/seq
 *   !h!   author(8) feed(8)                            varint highest seq stored     feed heads
 *   !d!   feed(8) time(u32) id(32)                     empty                         by document/feed
 *   !t!   recipient key id(8) time(u32) id(32)         empty                         by recipient
 *   !e!   expires(u64) id(32)                          empty                         by expiry
 *   !q!   author(8)                                    varint records, varint bytes  quota usage
 *   !f!   author(8) feed(8) seq(u64) id(32)            record bytes                  fork evidence
 *   !x!   author(8)                                    empty                         flagged authors
 *   !m!   utf8 'version' | 'totals'                    u8 1 | varint records, bytes, authors, flagged
 *   !l!   utf8 key                                     utf8 value                    node-local state
 *
 * Integers are big-endian (u32 = 4 bytes, u64 = 8 bytes). A record, its index entries, the
 * author's usage counter, the feed head and the totals are written in one atomic batch, so a
 * crash leaves either all of them or none. Feed heads outlive expiry: `latestSeq` never goes
 * back, so a node never reuses a sequence number that neighbours may still hold (a fork).
 *
 * Fork evidence: the first record at a position stays the normal, indexed record; it and the
 * first conflicting record are copied to `!f!` (once per position; more versions add nothing
 * new) and the author is flagged. Evidence is never expired. Records of flagged authors are
 * still accepted: what to do about a cloned key is policy, not storage.
 *
 * Corrupt data: a stored record that does not decode (or whose bytes do not hash to its key)
 * is skipped by every listing and iteration and counted in `stats().corrupt` (since open);
 * `get` of that id, and a `put` that needs it to decide, throw MeshError STORE_CORRUPT.
 */
import type { AbstractLevel } from 'abstract-level';
import { ByteReader, ByteWriter, concatBytes, equalBytes, toHex, utf8 } from './bytes.ts';
import { MeshError } from './errors.ts';
import { KEY_ID_LENGTH } from './identity.ts';
import { isAbstractLevel, LevelDatabase } from './level-database.ts';
import { checkQuotaLimits, DEFAULT_QUOTA, fitsQuota, type QuotaLimits, type QuotaOverride, type QuotaUsage } from './quota.ts';
import { decodeRecord, FEED_ID_LENGTH, isFork, RECORD_ID_LENGTH, type Record } from './record.ts';
import { sealedRecipients } from './seal.ts';
import type { KeyRange, StoreDatabase, StoreWrite } from './store-database.ts';

export const STORE_FORMAT_VERSION = 1;

export interface RecordStoreOptions {
  /** Default per-author record limit (10,000). */
  maxRecordsPerAuthor?: number;
  /** Default per-author byte limit (8 MiB of encoded records). */
  maxBytesPerAuthor?: number;
  /** Per-author override of the defaults, e.g. no limit for the household's own keys. */
  quotaFor?: QuotaOverride;
}

export interface PutOptions {
  /**
   * Wait until the batch is on stable storage (LevelDB `sync`), so it survives a power cut.
   * Pass it for writes acknowledged to a user; relayed records can be fetched again. A synced
   * batch also makes every earlier write durable, so it is written even when all records are
   * duplicates. Default false.
   */
  sync?: boolean;
  /** Unix seconds now: records that expire at or before it are refused. Omitted: no check. */
  now?: number;
}

export type PutStatus = 'stored' | 'duplicate' | 'fork' | 'quota' | 'expired';

/** What became of one record offered to `put`, in the order given. */
export interface PutResult {
  id: Uint8Array;
  status: PutStatus;
}

/** Proof that an author signed two different records at one position. */
export interface ForkEvidence {
  author: Uint8Array;
  feed: Uint8Array;
  seq: number;
  /** The conflicting records (at least two), ordered by id. */
  records: Record[];
}

export interface StoreStats {
  /** Normal records (fork evidence not included). */
  records: number;
  /** Bytes of those records' encodings. */
  bytes: number;
  /** Authors with at least one record. */
  authors: number;
  /** Authors flagged for a fork. */
  flagged: number;
  /** Undecodable stored records skipped since the store was opened. */
  corrupt: number;
}

interface Totals {
  records: number;
  bytes: number;
  authors: number;
  flagged: number;
}

/** The areas of the key layout above. */
const RECORDS = 'r';
const BY_SEQ = 'a';
const HEADS = 'h';
const BY_FEED = 'd';
const BY_RECIPIENT = 't';
const BY_EXPIRY = 'e';
const USAGE = 'q';
const FORKS = 'f';
const FLAGS = 'x';
const META = 'm';
const LOCAL = 'l';

const VERSION_KEY = utf8('version');
const TOTALS_KEY = utf8('totals');
/** Local values are read as level's utf8 encoding read them: bad bytes become U+FFFD. */
const localText = new TextDecoder();

const EMPTY = new Uint8Array(0);
const POSITION_LENGTH = KEY_ID_LENGTH + FEED_ID_LENGTH + 8;
/** Expired records removed per batch, to bound memory on a big expiry. */
const EXPIRE_CHUNK = 256;

/** Write `n` (below 2^32) as 4 big-endian bytes at `offset`; a Uint8Array keeps the low byte. */
function writeU32(out: Uint8Array, offset: number, n: number): void {
  out[offset] = n >>> 24;
  out[offset + 1] = n >>> 16;
  out[offset + 2] = n >>> 8;
  out[offset + 3] = n;
}

/** Write a safe integer as 8 big-endian bytes at `offset`. */
function writeU64(out: Uint8Array, offset: number, n: number): void {
  writeU32(out, offset, Math.floor(n / 2 ** 32));
  writeU32(out, offset + 4, n >>> 0);
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  writeU32(out, 0, n);
  return out;
}

function u64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  writeU64(out, 0, n);
  return out;
}

function readU64(bytes: Uint8Array, offset: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 8);
  return view.getUint32(0) * 2 ** 32 + view.getUint32(4);
}

/** The range of every key of `length` bytes that starts with `prefix`. */
function prefixRange(prefix: Uint8Array, length: number): { gte: Uint8Array; lte: Uint8Array } {
  const upper = new Uint8Array(length).fill(0xff);
  upper.set(prefix);
  return { gte: prefix, lte: upper };
}

function encodeCounters(values: number[]): Uint8Array {
  const w = new ByteWriter(values.length * 4);
  for (const v of values) w.varint(v);
  return w.finish();
}

function decodeCounters(bytes: Uint8Array | undefined, count: number, what: string): number[] {
  if (bytes === undefined) throw new MeshError('STORE_CORRUPT', `the store's ${what} are missing`);
  try {
    const r = new ByteReader(bytes, what);
    const values = Array.from({ length: count }, () => r.varint());
    r.end();
    return values;
  } catch (cause) {
    throw new MeshError('STORE_CORRUPT', `the store's ${what} do not decode`, { cause });
  }
}

function checkBytes(value: unknown, length: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new MeshError('STORE_INVALID', `${what} must be ${length} bytes`);
  }
  return value;
}

function checkRecord(record: unknown): Record {
  const r = record as Partial<Record> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    !(r.bytes instanceof Uint8Array) ||
    !(r.id instanceof Uint8Array && r.id.length === RECORD_ID_LENGTH) ||
    !(r.author instanceof Uint8Array && r.author.length === KEY_ID_LENGTH) ||
    !(r.feed instanceof Uint8Array && r.feed.length === FEED_ID_LENGTH) ||
    !Number.isSafeInteger(r.seq)
  ) {
    throw new MeshError('STORE_INVALID', 'put takes decoded records (see decodeRecord)');
  }
  return record as Record;
}

function positionKey(author: Uint8Array, feed: Uint8Array, seq: number): Uint8Array {
  const key = new Uint8Array(POSITION_LENGTH);
  key.set(author);
  key.set(feed, KEY_ID_LENGTH);
  writeU64(key, KEY_ID_LENGTH + FEED_ID_LENGTH, seq);
  return key;
}

/** Every key a stored record occupies, with its value: the record and its index entries. */
function entriesOf(record: Record, position = positionKey(record.author, record.feed, record.seq)): Array<[area: string, key: Uint8Array, value: Uint8Array]> {
  const { id } = record;
  const time = u32(record.time);
  const entries: Array<[string, Uint8Array, Uint8Array]> = [
    [RECORDS, id, record.bytes],
    [BY_SEQ, position, id],
    [BY_FEED, concatBytes(record.feed, time, id), EMPTY],
  ];
  for (const recipient of recipientsOf(record)) entries.push([BY_RECIPIENT, concatBytes(recipient, time, id), EMPTY]);
  if (record.expires !== null) entries.push([BY_EXPIRY, concatBytes(u64(record.expires), id), EMPTY]);
  return entries;
}

/** Recipient key ids a sealed record names; none when it is not sealed or the seal is malformed. */
function recipientsOf(record: Record): Uint8Array[] {
  if (!record.sealed) return [];
  let ids: Uint8Array[];
  try {
    ids = sealedRecipients(record.payload);
  } catch {
    return [];
  }
  const unique = new Map(ids.map((id) => [toHex(id), id]));
  return [...unique.values()];
}

/** The write set of one batch, plus the state it changes, committed only if the write succeeds. */
class Batch {
  readonly ops: StoreWrite[] = [];
  readonly seen = new Set<string>();
  /** Records stored earlier in this batch, by hex position. */
  readonly positions = new Map<string, Record>();
  readonly forkPositions = new Set<string>();
  readonly flagged = new Set<string>();
  readonly usage = new Map<string, { author: Uint8Array; usage: QuotaUsage; changed: boolean }>();
  readonly heads = new Map<string, { key: Uint8Array; seq: number }>();
  constructor(readonly totals: Totals) {}
}

/**
 * What the store held for one record offered to `put`, read ahead for the whole batch with
 * getMany (one round trip each instead of one per record). Only `held` for a held record.
 */
interface ReadAhead {
  /** The record itself is stored. */
  held: boolean;
  position?: Uint8Array;
  /** The id of the record stored at its position, if any. */
  holderId?: Uint8Array;
  /** Its feed head's key (author, feed) and the highest seq stored there, or -1. */
  headKey?: Uint8Array;
  head?: number;
}

/**
 * A household's record store. Create with `RecordStore.open(db)`; the store owns `db` from
 * then on and closes it in `close()`. Writes (`put`, `expire`) run one at a time in call
 * order, because each reads and updates counters; reads run concurrently with them.
 */
export class RecordStore {
  private readonly defaults: QuotaLimits;
  private readonly quotaFor: QuotaOverride | undefined;
  private totals: Totals = { records: 0, bytes: 0, authors: 0, flagged: 0 };
  private corrupt = 0;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * A batch write failed: whether it reached the disk is not known (a sync that failed after
   * the write; the database may replay it when reopened), so the totals are read again from
   * the database before the next batch is built on them.
   */
  private totalsUnsure = false;

  private constructor(
    private readonly db: StoreDatabase,
    options: RecordStoreOptions,
  ) {
    this.defaults = checkQuotaLimits(
      { records: options.maxRecordsPerAuthor ?? DEFAULT_QUOTA.records, bytes: options.maxBytesPerAuthor ?? DEFAULT_QUOTA.bytes },
      'maxRecordsPerAuthor / maxBytesPerAuthor',
    );
    if (options.quotaFor !== undefined && typeof options.quotaFor !== 'function') {
      throw new MeshError('STORE_INVALID', 'quotaFor must be a function');
    }
    this.quotaFor = options.quotaFor;
  }

  /**
   * Open (or create) a store in `db`, opening `db` if needed: a `StoreDatabase`, or an
   * abstract-level database such as `Level` (used through a `LevelDatabase`). Throws MeshError
   * STORE_UNAVAILABLE (the database cannot be opened, e.g. locked by another process),
   * STORE_VERSION (written by a newer format) or STORE_CORRUPT (its counters are damaged).
   */
  static async open(database: StoreDatabase | AbstractLevel<any, any, any>, options: RecordStoreOptions = {}): Promise<RecordStore> {
    const db = isAbstractLevel(database) ? new LevelDatabase(database) : database;
    const store = new RecordStore(db, options);
    try {
      await db.open();
    } catch (cause) {
      throw new MeshError('STORE_UNAVAILABLE', 'the store database cannot be opened', { cause });
    }
    try {
      await store.loadMeta();
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
    return store;
  }

  private async loadMeta(): Promise<void> {
    const version = await this.db.get(META, VERSION_KEY);
    if (version === undefined) {
      const [anyRecord] = await this.db.keys(RECORDS, { limit: 1 });
      if (anyRecord) throw new MeshError('STORE_CORRUPT', 'the store holds records but no format version');
      await this.db.write(
        [
          { type: 'put', area: META, key: VERSION_KEY, value: Uint8Array.of(STORE_FORMAT_VERSION) },
          { type: 'put', area: META, key: TOTALS_KEY, value: encodeCounters([0, 0, 0, 0]) },
        ],
        { sync: true },
      );
      return;
    }
    if (version.length !== 1 || version[0] !== STORE_FORMAT_VERSION) {
      throw new MeshError('STORE_VERSION', `the store has format version ${version[0]}; this software reads version ${STORE_FORMAT_VERSION}`);
    }
    const [records, bytes, authors, flagged] = decodeCounters(await this.db.get(META, TOTALS_KEY), 4, 'totals');
    this.totals = { records: records!, bytes: bytes!, authors: authors!, flagged: flagged! };
  }

  /** Finish queued writes and close the database. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new MeshError('STORE_CLOSED', 'the record store is closed');
  }

  /** Run writes one at a time: each reads counters that the previous one may change. */
  private serialize<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.totalsUnsure) {
        const [records, bytes, authors, flagged] = decodeCounters(await this.db.get(META, TOTALS_KEY), 4, 'totals');
        this.totals = { records: records!, bytes: bytes!, authors: authors!, flagged: flagged! };
        this.totalsUnsure = false;
      }
      return task();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Store verified records in one atomic batch. Each gets a status: `stored`; `duplicate`
   * (already held, or earlier in this batch, or same signed content as the record at its
   * position); `fork` (another record holds its author/feed/seq: evidence kept, author
   * flagged); `quota` (the author is over its limits; nothing written for it); `expired`.
   * Throws STORE_CLOSED, STORE_INVALID, STORE_CORRUPT; then nothing is written.
   */
  async put(records: readonly Record[], options: PutOptions = {}): Promise<PutResult[]> {
    this.assertOpen();
    if (!Array.isArray(records)) throw new MeshError('STORE_INVALID', 'put takes an array of records');
    records.forEach(checkRecord);
    const { sync = false, now } = options;
    if (now !== undefined && !Number.isFinite(now)) throw new MeshError('STORE_INVALID', 'now must be Unix seconds');
    return this.serialize(async () => {
      const batch = new Batch({ ...this.totals });
      const known = await this.readAhead(records);
      const results: PutResult[] = [];
      for (let i = 0; i < records.length; i++) results.push({ id: records[i]!.id, status: await this.admit(records[i]!, known[i]!, now, batch) });
      await this.commit(batch, sync);
      return results;
    });
  }

  /**
   * Which ids are held, and for the records not held which positions are taken and each
   * feed's head, for every record at once. (A held record is a duplicate whatever its
   * position: on a mesh most records arrive again and again, and cost one read.)
   */
  private async readAhead(records: readonly Record[]): Promise<ReadAhead[]> {
    const stored = await this.db.getMany(RECORDS, records.map((r) => r.id));
    const known: ReadAhead[] = stored.map((bytes) => ({ held: bytes !== undefined }));
    const fresh: ReadAhead[] = [];
    known.forEach((k, i) => {
      if (k.held) return;
      const r = records[i]!;
      k.position = positionKey(r.author, r.feed, r.seq);
      k.headKey = k.position.subarray(0, KEY_ID_LENGTH + FEED_ID_LENGTH);
      fresh.push(k);
    });
    if (fresh.length === 0) return known;
    const [holders, heads] = await Promise.all([
      this.db.getMany(BY_SEQ, fresh.map((k) => k.position!)),
      this.db.getMany(HEADS, fresh.map((k) => k.headKey!)),
    ]);
    fresh.forEach((k, i) => {
      k.holderId = holders[i];
      const head = heads[i];
      k.head = head === undefined ? -1 : decodeCounters(head, 1, 'feed heads')[0]!;
    });
    return known;
  }

  private async admit(record: Record, known: ReadAhead, now: number | undefined, batch: Batch): Promise<PutStatus> {
    const idHex = toHex(record.id);
    if (batch.seen.has(idHex)) return 'duplicate';
    batch.seen.add(idHex);
    if (now !== undefined && record.expires !== null && record.expires <= now) return 'expired';
    if (known.held) return 'duplicate';
    const position = known.position!;
    const positionHex = toHex(position);
    const holder = batch.positions.get(positionHex) ?? (known.holderId && (await this.readRecord(known.holderId)));
    if (holder) {
      if (!isFork(holder, record)) return 'duplicate';
      await this.keepForkEvidence(holder, record, position, batch);
      return 'fork';
    }
    const quota = await this.usageOf(record.author, batch);
    if (!fitsQuota(quota.usage, this.limitsFor(record.author), record.bytes.length)) return 'quota';
    quota.changed = true;
    const usage = quota.usage;

    for (const [area, key, value] of entriesOf(record, position)) batch.ops.push({ type: 'put', area, key, value });
    batch.positions.set(positionHex, record);
    if (usage.records === 0) batch.totals.authors++;
    usage.records++;
    usage.bytes += record.bytes.length;
    batch.totals.records++;
    batch.totals.bytes += record.bytes.length;
    const headKey = known.headKey!;
    const headHex = toHex(headKey);
    const head = batch.heads.get(headHex)?.seq ?? known.head!;
    if (record.seq > head) batch.heads.set(headHex, { key: headKey, seq: record.seq });
    return 'stored';
  }

  private async keepForkEvidence(holder: Record, record: Record, position: Uint8Array, batch: Batch): Promise<void> {
    const positionHex = toHex(position);
    if (!batch.forkPositions.has(positionHex)) {
      batch.forkPositions.add(positionHex);
      const [known] = await this.db.keys(FORKS, { ...prefixRange(position, POSITION_LENGTH + RECORD_ID_LENGTH), limit: 1 });
      if (!known) {
        for (const r of [holder, record]) {
          batch.ops.push({ type: 'put', area: FORKS, key: concatBytes(position, r.id), value: r.bytes });
        }
      }
    }
    const authorHex = toHex(record.author);
    if (!batch.flagged.has(authorHex)) {
      batch.flagged.add(authorHex);
      if ((await this.db.get(FLAGS, record.author)) === undefined) {
        batch.ops.push({ type: 'put', area: FLAGS, key: record.author, value: EMPTY });
        batch.totals.flagged++;
      }
    }
  }

  private limitsFor(author: Uint8Array): QuotaLimits | null {
    const override = this.quotaFor?.(author);
    if (override === undefined) return this.defaults;
    if (override === null) return null;
    return checkQuotaLimits(override, 'quotaFor()');
  }

  /** The author's usage as this batch sees it; set `changed` to have it written. */
  private async usageOf(author: Uint8Array, batch: Batch): Promise<{ usage: QuotaUsage; changed: boolean }> {
    const authorHex = toHex(author);
    let entry = batch.usage.get(authorHex);
    if (!entry) {
      const stored = await this.db.get(USAGE, author);
      const [records, bytes] = stored === undefined ? [0, 0] : decodeCounters(stored, 2, 'quota counters');
      entry = { author, usage: { records: records!, bytes: bytes! }, changed: false };
      batch.usage.set(authorHex, entry);
    }
    return entry;
  }

  private async headOf(headKey: Uint8Array): Promise<number> {
    const stored = await this.db.get(HEADS, headKey);
    return stored === undefined ? -1 : decodeCounters(stored, 1, 'feed heads')[0]!;
  }

  /** Write the batch's operations and counters; adopt its totals only once it is written. */
  private async commit(batch: Batch, sync: boolean): Promise<void> {
    if (batch.ops.length === 0 && !sync) return;
    const ops = batch.ops;
    for (const { author, usage, changed } of batch.usage.values()) {
      if (!changed) continue;
      ops.push(
        usage.records > 0
          ? { type: 'put', area: USAGE, key: author, value: encodeCounters([usage.records, usage.bytes]) }
          : { type: 'del', area: USAGE, key: author },
      );
    }
    for (const { key, seq } of batch.heads.values()) ops.push({ type: 'put', area: HEADS, key, value: encodeCounters([seq]) });
    const t = batch.totals;
    ops.push({ type: 'put', area: META, key: TOTALS_KEY, value: encodeCounters([t.records, t.bytes, t.authors, t.flagged]) });
    try {
      await this.db.write(ops, { sync });
    } catch (err) {
      this.totalsUnsure = true;
      throw err;
    }
    this.totals = t;
  }

  /** The record with this id, or undefined; throws STORE_CORRUPT when its bytes are damaged. */
  private async readRecord(id: Uint8Array): Promise<Record | undefined> {
    const bytes = await this.db.get(RECORDS, id);
    if (bytes === undefined) return undefined;
    const record = this.decodeStored(bytes, id);
    if (!record) throw new MeshError('STORE_CORRUPT', `stored record ${toHex(id)} does not decode`);
    return record;
  }

  /**
   * Remove every record that expires at or before `nowSeconds`, with its index entries, and
   * give its author's quota back. Walks the expiry index, not the store. Returns how many
   * records were removed. Feed heads and fork evidence stay.
   */
  async expire(nowSeconds: number): Promise<number> {
    this.assertOpen();
    if (!Number.isSafeInteger(nowSeconds) || nowSeconds < 0) throw new MeshError('STORE_INVALID', 'expire takes Unix seconds');
    return this.serialize(async () => {
      let removed = 0;
      for (;;) {
        const keys = await this.db.keys(BY_EXPIRY, { lt: u64(nowSeconds + 1), limit: EXPIRE_CHUNK });
        if (keys.length === 0) return removed;
        const batch = new Batch({ ...this.totals });
        const ids = keys.map((key) => key.subarray(8));
        const values = await this.db.getMany(RECORDS, ids);
        for (let i = 0; i < keys.length; i++) {
          batch.ops.push({ type: 'del', area: BY_EXPIRY, key: keys[i]! });
          const record = values[i] === undefined ? undefined : this.decodeStored(values[i]!, ids[i]!);
          if (!record) {
            // A dangling or damaged entry: drop what we can; its index entries cannot be rebuilt.
            if (values[i] !== undefined) batch.ops.push({ type: 'del', area: RECORDS, key: ids[i]! });
            continue;
          }
          for (const [area, key] of entriesOf(record)) batch.ops.push({ type: 'del', area, key });
          const quota = await this.usageOf(record.author, batch);
          quota.changed = true;
          const usage = quota.usage;
          // Clamped at zero: counters must not go negative even if they ever drifted.
          if (usage.records > 0 && --usage.records === 0) batch.totals.authors = Math.max(0, batch.totals.authors - 1);
          usage.bytes = Math.max(0, usage.bytes - record.bytes.length);
          batch.totals.records = Math.max(0, batch.totals.records - 1);
          batch.totals.bytes = Math.max(0, batch.totals.bytes - record.bytes.length);
          removed++;
        }
        await this.commit(batch, false);
      }
    });
  }

  /** Decode a stored record, or count it as corrupt and return undefined. */
  private decodeStored(bytes: Uint8Array, id: Uint8Array): Record | undefined {
    try {
      const record = decodeRecord(bytes);
      if (equalBytes(record.id, id)) return record;
    } catch {
      // counted below
    }
    this.corrupt++;
    return undefined;
  }

  /** The record with this id, or undefined. Throws STORE_CORRUPT when its stored bytes are damaged. */
  async get(id: Uint8Array): Promise<Record | undefined> {
    this.assertOpen();
    return this.readRecord(checkBytes(id, RECORD_ID_LENGTH, 'record id'));
  }

  /** True when a record with this id is stored (fork evidence does not count). */
  async has(id: Uint8Array): Promise<boolean> {
    this.assertOpen();
    return (await this.db.get(RECORDS, checkBytes(id, RECORD_ID_LENGTH, 'record id'))) !== undefined;
  }

  /** Records by id, in that order, skipping ids whose record is gone or damaged. */
  private async recordsById(ids: Uint8Array[]): Promise<Record[]> {
    const values = await this.db.getMany(RECORDS, ids);
    const out: Record[] = [];
    for (let i = 0; i < ids.length; i++) {
      const record = values[i] === undefined ? undefined : this.decodeStored(values[i]!, ids[i]!);
      if (record) out.push(record);
    }
    return out;
  }

  /** Every record of a document or feed, from all authors, ordered by time, then id. */
  async byFeed(feed: Uint8Array): Promise<Record[]> {
    this.assertOpen();
    const range = prefixRange(checkBytes(feed, FEED_ID_LENGTH, 'feed id'), FEED_ID_LENGTH + 4 + RECORD_ID_LENGTH);
    const keys = await this.db.keys(BY_FEED, range);
    return this.recordsById(keys.map((k) => k.subarray(FEED_ID_LENGTH + 4)));
  }

  /** One author's records in one feed, ordered by seq, starting at `fromSeq`. */
  async byAuthor(author: Uint8Array, feed: Uint8Array, fromSeq = 0): Promise<Record[]> {
    this.assertOpen();
    checkBytes(author, KEY_ID_LENGTH, 'author id');
    checkBytes(feed, FEED_ID_LENGTH, 'feed id');
    if (!Number.isSafeInteger(fromSeq) || fromSeq < 0) throw new MeshError('STORE_INVALID', 'fromSeq must be a non-negative integer');
    const ids = await this.db.values(BY_SEQ, { gte: positionKey(author, feed, fromSeq), lte: prefixRange(concatBytes(author, feed), POSITION_LENGTH).lte });
    return this.recordsById(ids);
  }

  /** Sealed records that name this recipient key id (keyId of an X25519 key), ordered by time, then id. */
  async byRecipient(recipient: Uint8Array): Promise<Record[]> {
    this.assertOpen();
    const range = prefixRange(checkBytes(recipient, KEY_ID_LENGTH, 'recipient key id'), KEY_ID_LENGTH + 4 + RECORD_ID_LENGTH);
    const keys = await this.db.keys(BY_RECIPIENT, range);
    return this.recordsById(keys.map((k) => k.subarray(KEY_ID_LENGTH + 4)));
  }

  /**
   * Ids of the sealed records that name this recipient key id, ordered by time, then id: the
   * index alone, no record read (an app keeping its own index checks it against this cheaply).
   */
  async idsByRecipient(recipient: Uint8Array): Promise<Uint8Array[]> {
    this.assertOpen();
    const range = prefixRange(checkBytes(recipient, KEY_ID_LENGTH, 'recipient key id'), KEY_ID_LENGTH + 4 + RECORD_ID_LENGTH);
    const keys = await this.db.keys(BY_RECIPIENT, range);
    return keys.map((k) => k.subarray(KEY_ID_LENGTH + 4));
  }

  /**
   * The highest seq this author ever stored in this feed (even if since expired), or -1.
   * The next record the author publishes takes `latestSeq + 1`.
   */
  async latestSeq(author: Uint8Array, feed: Uint8Array): Promise<number> {
    this.assertOpen();
    return this.headOf(concatBytes(checkBytes(author, KEY_ID_LENGTH, 'author id'), checkBytes(feed, FEED_ID_LENGTH, 'feed id')));
  }

  /** Every stored record id, in byte order (what sync summarises). */
  async *ids(): AsyncGenerator<Uint8Array> {
    this.assertOpen();
    for await (const [id] of this.db.iterate(RECORDS)) yield id;
  }

  /** Every stored record, in id order, skipping (and counting) damaged ones. */
  async *records(): AsyncGenerator<Record> {
    this.assertOpen();
    for await (const [id, bytes] of this.db.iterate(RECORDS)) {
      const record = this.decodeStored(bytes, id);
      if (record) yield record;
    }
  }

  /** Number of stored records (kept as a counter, no scan). */
  count(): number {
    this.assertOpen();
    return this.totals.records;
  }

  /** Fork evidence, grouped by position; only this author's when `author` is given. */
  async forks(author?: Uint8Array): Promise<ForkEvidence[]> {
    this.assertOpen();
    const range: KeyRange = author === undefined ? {} : prefixRange(checkBytes(author, KEY_ID_LENGTH, 'author id'), POSITION_LENGTH + RECORD_ID_LENGTH);
    const out: ForkEvidence[] = [];
    for await (const [key, bytes] of this.db.iterate(FORKS, range)) {
      const record = this.decodeStored(bytes, key.subarray(POSITION_LENGTH));
      if (!record) continue;
      const last = out.at(-1);
      const seq = readU64(key, KEY_ID_LENGTH + FEED_ID_LENGTH);
      if (last && equalBytes(last.author, record.author) && equalBytes(last.feed, record.feed) && last.seq === seq) {
        last.records.push(record);
      } else {
        out.push({ author: record.author, feed: record.feed, seq, records: [record] });
      }
    }
    return out;
  }

  /** True when this author was caught signing a fork. Persistent. */
  async isFlagged(author: Uint8Array): Promise<boolean> {
    this.assertOpen();
    return (await this.db.get(FLAGS, checkBytes(author, KEY_ID_LENGTH, 'author id'))) !== undefined;
  }

  /** Counts for status pages and metrics. No scan. */
  async stats(): Promise<StoreStats> {
    this.assertOpen();
    return { ...this.totals, corrupt: this.corrupt };
  }

  /** Node-local state (never synced): the value under `key`, or undefined. */
  async getLocal(key: string): Promise<string | undefined> {
    this.assertOpen();
    const value = await this.db.get(LOCAL, utf8(checkLocalKey(key)));
    return value === undefined ? undefined : localText.decode(value);
  }

  /** Set node-local state. `sync` as for `put`. */
  async putLocal(key: string, value: string, options: { sync?: boolean } = {}): Promise<void> {
    this.assertOpen();
    if (typeof value !== 'string') throw new MeshError('STORE_INVALID', 'local values are strings');
    await this.db.write([{ type: 'put', area: LOCAL, key: utf8(checkLocalKey(key)), value: utf8(value) }], { sync: options.sync ?? false });
  }

  /** Node-local entries whose key starts with `prefix`, in key order. */
  async listLocal(prefix: string): Promise<Array<[key: string, value: string]>> {
    this.assertOpen();
    const out: Array<[string, string]> = [];
    for await (const [key, value] of this.db.iterate(LOCAL, { gte: utf8(checkLocalKey(prefix)), lt: utf8(`${prefix}\uffff`) })) {
      out.push([localText.decode(key), localText.decode(value)]);
    }
    return out;
  }

  /** Remove node-local state. */
  async deleteLocal(key: string): Promise<void> {
    this.assertOpen();
    await this.db.write([{ type: 'del', area: LOCAL, key: utf8(checkLocalKey(key)) }], { sync: false });
  }
}

function checkLocalKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new MeshError('STORE_INVALID', 'local keys are non-empty strings');
  return key;
}
