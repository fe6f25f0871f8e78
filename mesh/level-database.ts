/**
 * A `StoreDatabase` on any abstract-level database: `Level` (LevelDB on disk) in the daemon.
 * Each area is a sublevel of that name with binary keys and values (`keyEncoding: 'view'`,
 * `valueEncoding: 'view'`), so a key on disk is `!<area>!` followed by the area's key bytes:
 * record `id` is stored under `!r!<id>`. Both LevelDB and memory-level store binary keys
 * natively.
 *
 * A full or read-only disk: a write LevelDB cannot make is refused with MeshError
 * STORE_DISK_FULL or STORE_READ_ONLY (nothing of it is applied). LevelDB leaves its log ending
 * in the part of that batch that fitted, and writes later batches after it; reopening the
 * database then drops every batch behind the broken one ("checksum mismatch"): acknowledged
 * writes lost. So after a failed write the database is closed and reopened (LevelDB turns the
 * log into a table and starts a new one) before it takes another write, and only once the
 * disk has room for that; reads go on meanwhile. Writes go to LevelDB one at a time, so none
 * is already queued inside LevelDB, behind a batch that is about to fail, when it fails.
 */
import { accessSync, constants, existsSync, readdirSync, statfsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { AbstractBatchOperation, AbstractLevel, AbstractSublevel } from 'abstract-level';
import { diskProblemOf, MeshError, type DiskProblem } from './errors.ts';
import type { KeyRange, StoreDatabase, StoreWrite } from './store-database.ts';

type Database = AbstractLevel<any, any, any>;
type Area = AbstractSublevel<Database, unknown, Uint8Array, Uint8Array>;

/**
 * Write options asking LevelDB to fsync before resolving. `sync` is an implementation option
 * (classic-level honours it, memory-level ignores it), so abstract-level's types omit it.
 * Not syncing is the default, and passes an empty options object: abstract-level copies the
 * options into every operation of a batch (`{ ...options, ...op }`), which V8 does 25 times
 * slower from a non-empty object (~5 µs an operation; it was a tenth of a simulation's CPU).
 */
function durable(sync: boolean): object {
  return sync ? { sync } : NOT_DURABLE;
}

const NOT_DURABLE = Object.freeze({});

/** True when `db` is an abstract-level database rather than a `StoreDatabase`. */
export function isAbstractLevel(db: StoreDatabase | Database): db is Database {
  return typeof (db as Database).sublevel === 'function';
}

/** Free space a reopen needs besides the log it turns into a table (a new log, manifest, LOG). */
const REOPEN_SPARE_BYTES = 256 * 1024;

/** What the owner of a `LevelDatabase` hears about its disk (the daemon logs it). */
export interface LevelDatabaseOptions {
  /** A write was refused because the disk is full or read-only (called on every such write). */
  onDiskProblem?: (problem: DiskProblem) => void;
  /** Writes work again after a disk problem. */
  onRecovered?: () => void;
}

/** The MeshError a write refused for `problem` throws. */
export function diskError(problem: DiskProblem, cause?: unknown): MeshError {
  return problem === 'full'
    ? new MeshError('STORE_DISK_FULL', "the household's disk is full: nothing was saved", { cause })
    : new MeshError('STORE_READ_ONLY', "the household's disk is read-only: nothing was saved", { cause });
}

/**
 * Whether the file system holding `path` (or its nearest existing parent) is read-only or has
 * less than `needBytes` free, asked of the file system itself: failures do not always say (a
 * recursive mkdir on a read-only file system fails with ENOENT; LevelDB's messages vary).
 */
export function diskProblemAt(path: string, needBytes = 1): DiskProblem | null {
  let at = resolve(path);
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  try {
    accessSync(at, constants.W_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EROFS') return 'read-only';
  }
  try {
    const { bavail, bfree, bsize } = statfsSync(at);
    // Root may write into the blocks a file system keeps back (ext4: 5 %), and LevelDB with it.
    const free = (process.getuid?.() === 0 ? bfree : bavail) * bsize;
    if (free < needBytes) return 'full';
  } catch {
    // no file-system figures
  }
  return null;
}

/** A record store's database on an abstract-level database, one sublevel an area. */
export class LevelDatabase implements StoreDatabase {
  readonly #areas = new Map<string, Area>();
  /** A write failed: the database must be reopened before the next one (see the header). */
  #damaged = false;
  #problem: DiskProblem | null = null;
  #reopening: Promise<void> | null = null;
  #closedByOwner = false;
  /** The last write handed to LevelDB (settled): the next one waits for it. */
  #writing: Promise<unknown> = Promise.resolve();

  /** Takes over `db`: `close()` closes it. */
  constructor(
    private readonly db: Database,
    private readonly options: LevelDatabaseOptions = {},
  ) {}

  /** The directory of an on-disk database (classic-level's `location`), else undefined. */
  get #location(): string | undefined {
    const location = (this.db as { location?: unknown }).location;
    return typeof location === 'string' ? location : undefined;
  }

  /**
   * Whether the disk under the database is read-only or too full to write `needBytes`, asked
   * of the file system itself (LevelDB's messages are not always clear about it).
   */
  #diskProblemNow(needBytes: number): DiskProblem | null {
    const location = this.#location;
    return location === undefined ? null : diskProblemAt(location, needBytes);
  }

  /** Bytes of LevelDB's logs, which a reopen writes out as a table. */
  #logBytes(): number {
    const location = this.#location;
    if (location === undefined) return 0;
    try {
      return readdirSync(location)
        .filter((name) => name.endsWith('.log'))
        .reduce((sum, name) => sum + statSync(join(location, name)).size, 0);
    } catch {
      return 0;
    }
  }

  /** Reopen after a failed write, if the disk has room now; throws the disk's problem if not. */
  #recover(): Promise<void> {
    this.#reopening ??= (async () => {
      const problem = this.#diskProblemNow(this.#logBytes() + REOPEN_SPARE_BYTES);
      if (problem) {
        this.#problem = problem;
        throw diskError(problem);
      }
      try {
        if (this.db.status === 'open') await this.db.close();
        this.#areas.clear();
        await this.db.open();
      } catch (cause) {
        const problem = diskProblemOf(cause) ?? this.#diskProblemNow(REOPEN_SPARE_BYTES);
        if (problem) {
          this.#problem = problem;
          throw diskError(problem, cause);
        }
        throw new MeshError('STORE_UNAVAILABLE', 'the store database could not be reopened after a failed write', { cause });
      }
      this.#damaged = false;
    })().finally(() => {
      this.#reopening = null;
    });
    return this.#reopening;
  }

  /** Before a read: wait for a reopen under way; reopen a database a failed reopen left closed. */
  async #readable(): Promise<void> {
    if (this.#reopening) await this.#reopening.catch(() => undefined);
    if (this.#damaged && !this.#closedByOwner && this.db.status === 'closed') await this.#recover();
  }

  #area(name: string): Area {
    let area = this.#areas.get(name);
    if (!area) {
      area = this.db.sublevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' });
      this.#areas.set(name, area);
    }
    return area;
  }

  open(): Promise<void> {
    this.#closedByOwner = false;
    return this.db.open();
  }

  /** Closes the database; its sublevels close with it and are made again after a reopen. */
  async close(): Promise<void> {
    this.#closedByOwner = true;
    if (this.#reopening) await this.#reopening.catch(() => undefined);
    this.#areas.clear();
    return this.db.close();
  }

  async get(area: string, key: Uint8Array): Promise<Uint8Array | undefined> {
    await this.#readable();
    return this.#area(area).get(key);
  }

  async getMany(area: string, keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    await this.#readable();
    return this.#area(area).getMany(keys as Uint8Array[]);
  }

  async keys(area: string, range: KeyRange = {}): Promise<Uint8Array[]> {
    await this.#readable();
    return this.#area(area).keys(range).all();
  }

  async values(area: string, range: KeyRange = {}): Promise<Uint8Array[]> {
    await this.#readable();
    return this.#area(area).values(range).all();
  }

  async *iterate(area: string, range: KeyRange = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    await this.#readable();
    yield* this.#area(area).iterator(range);
  }

  write(changes: readonly StoreWrite[], options: { sync: boolean }): Promise<void> {
    const next = this.#writing.then(() => this.#write(changes, options));
    this.#writing = next.catch(() => undefined);
    return next;
  }

  async #write(changes: readonly StoreWrite[], options: { sync: boolean }): Promise<void> {
    if (this.#damaged && !this.#closedByOwner) {
      try {
        await this.#recover();
      } catch (err) {
        const problem = diskProblemOf(err);
        if (problem) this.options.onDiskProblem?.(problem);
        throw err;
      }
    }
    const ops = changes.map((change): AbstractBatchOperation<Database, unknown, unknown> =>
      change.type === 'put'
        ? { type: 'put', sublevel: this.#area(change.area), key: change.key, value: change.value }
        : { type: 'del', sublevel: this.#area(change.area), key: change.key },
    );
    try {
      await this.db.batch(ops, durable(options.sync));
    } catch (cause) {
      // Not open (closed by its owner, still opening): nothing reached the log.
      if ((cause as { code?: unknown }).code === 'LEVEL_DATABASE_NOT_OPEN') throw cause;
      this.#damaged = true;
      const problem = diskProblemOf(cause) ?? this.#diskProblemNow(REOPEN_SPARE_BYTES);
      if (!problem) throw cause;
      this.#problem = problem;
      this.options.onDiskProblem?.(problem);
      throw diskError(problem, cause);
    }
    if (this.#problem) {
      this.#problem = null;
      this.options.onRecovered?.();
    }
  }
}
