/**
 * A `StoreDatabase` on any abstract-level database: `Level` (LevelDB on disk) in the daemon.
 * Each area is a sublevel of that name with binary keys and values (`keyEncoding: 'view'`,
 * `valueEncoding: 'view'`), so a key on disk is `!<area>!` followed by the area's key bytes:
 * record `id` is stored under `!r!<id>`. Both LevelDB and memory-level store binary keys
 * natively.
 */
import type { AbstractBatchOperation, AbstractLevel, AbstractSublevel } from 'abstract-level';
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

/** A record store's database on an abstract-level database, one sublevel an area. */
export class LevelDatabase implements StoreDatabase {
  readonly #areas = new Map<string, Area>();

  /** Takes over `db`: `close()` closes it. */
  constructor(private readonly db: Database) {}

  #area(name: string): Area {
    let area = this.#areas.get(name);
    if (!area) {
      area = this.db.sublevel<Uint8Array, Uint8Array>(name, { keyEncoding: 'view', valueEncoding: 'view' });
      this.#areas.set(name, area);
    }
    return area;
  }

  open(): Promise<void> {
    return this.db.open();
  }

  /** Closes the database; its sublevels close with it and are made again after a reopen. */
  close(): Promise<void> {
    this.#areas.clear();
    return this.db.close();
  }

  get(area: string, key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#area(area).get(key);
  }

  getMany(area: string, keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    return this.#area(area).getMany(keys as Uint8Array[]);
  }

  keys(area: string, range: KeyRange = {}): Promise<Uint8Array[]> {
    return this.#area(area).keys(range).all();
  }

  values(area: string, range: KeyRange = {}): Promise<Uint8Array[]> {
    return this.#area(area).values(range).all();
  }

  iterate(area: string, range: KeyRange = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    return this.#area(area).iterator(range);
  }

  write(changes: readonly StoreWrite[], options: { sync: boolean }): Promise<void> {
    const ops = changes.map((change): AbstractBatchOperation<Database, unknown, unknown> =>
      change.type === 'put'
        ? { type: 'put', sublevel: this.#area(change.area), key: change.key, value: change.value }
        : { type: 'del', sublevel: this.#area(change.area), key: change.key },
    );
    return this.db.batch(ops, durable(options.sync));
  }
}
