/**
 * The ordered key-value database a `RecordStore` runs on: all the store asks of its storage,
 * so the same store code runs on LevelDB (`LevelDatabase`, any abstract-level database: the
 * daemon) and on plain sorted arrays in memory (`MemoryDatabase`: the simulator and tests),
 * one contract suite for both (test/mesh/record-store.contract.ts).
 *
 * The data is split into areas, each named by a short string (the record store uses one
 * letter an area; its header lists them with their keys and values). Within an area, keys
 * and values are bytes and keys sort as bytes, so big-endian integers sort by value. Reads
 * and range reads see every write that resolved before they were called; walks with `iterate`
 * see the area as it was when they began. Keys and values are held and handed out by
 * reference: callers must not change a byte array after writing it or reading it.
 */

/** Range of keys within one area: from `gte`, up to `lt` or `lte`, at most `limit` of them. */
export interface KeyRange {
  gte?: Uint8Array;
  lt?: Uint8Array;
  lte?: Uint8Array;
  limit?: number;
}

/** One change of an atomic `write`. */
export type StoreWrite =
  | { type: 'put'; area: string; key: Uint8Array; value: Uint8Array }
  | { type: 'del'; area: string; key: Uint8Array };

export interface StoreDatabase {
  /** Open (or reopen) the database; opening an open database does nothing. */
  open(): Promise<void>;
  /** Close it; reads and writes then fail until it is opened again. */
  close(): Promise<void>;
  /** The value under `key`, or undefined. */
  get(area: string, key: Uint8Array): Promise<Uint8Array | undefined>;
  /** The values under `keys`, in their order, undefined where there is none. */
  getMany(area: string, keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>>;
  /** The keys in `range`, in order. */
  keys(area: string, range?: KeyRange): Promise<Uint8Array[]>;
  /** The values of the keys in `range`, in key order. */
  values(area: string, range?: KeyRange): Promise<Uint8Array[]>;
  /** Walk the entries in `range` in key order, without holding them all at once. */
  iterate(area: string, range?: KeyRange): AsyncIterable<[key: Uint8Array, value: Uint8Array]>;
  /**
   * Apply the changes in order, all or none. `sync`: resolve only once they are on stable
   * storage, with every earlier write (where the database has any).
   */
  write(changes: readonly StoreWrite[], options: { sync: boolean }): Promise<void>;
}
