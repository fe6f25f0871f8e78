/**
 * A `StoreDatabase` in memory, for the simulator (one per simulated node) and tests: each area
 * is a pair of arrays, keys in byte order and their values at the same index, searched by
 * bisection. Reads and writes touch the arrays directly, with none of a general database's
 * encodings, key prefixes, option checks or per-entry promises, which cost the simulator a
 * sixth of its CPU on memory-level. An insert shifts the larger keys along (a memmove of
 * pointers): cheap at the thousands of records a node holds; not meant for millions.
 *
 * Nothing is durable: `sync` is accepted and means nothing. Like memory-level, the data stays
 * across `close()` and `open()`, so a test can reopen a store and read it back.
 */
import { compareBytes } from './bytes.ts';
import { MeshError } from './errors.ts';
import type { KeyRange, StoreDatabase, StoreWrite } from './store-database.ts';

/** One area: keys in byte order, each value at its key's index. */
class SortedArea {
  readonly keys: Uint8Array[] = [];
  readonly values: Uint8Array[] = [];

  /** Index of the first key at or above `key` (`after`: above it). */
  #bound(key: Uint8Array, after: boolean): number {
    const keys = this.keys;
    let low = 0;
    let high = keys.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const cmp = compareBytes(keys[mid]!, key);
      if (cmp < 0 || (after && cmp === 0)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Index of `key`, or -1. */
  indexOf(key: Uint8Array): number {
    const i = this.#bound(key, false);
    return i < this.keys.length && compareBytes(this.keys[i]!, key) === 0 ? i : -1;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const i = this.indexOf(key);
    return i < 0 ? undefined : this.values[i];
  }

  put(key: Uint8Array, value: Uint8Array): void {
    const i = this.#bound(key, false);
    if (i < this.keys.length && compareBytes(this.keys[i]!, key) === 0) {
      this.values[i] = value;
    } else {
      this.keys.splice(i, 0, key);
      this.values.splice(i, 0, value);
    }
  }

  del(key: Uint8Array): void {
    const i = this.indexOf(key);
    if (i < 0) return;
    this.keys.splice(i, 1);
    this.values.splice(i, 1);
  }

  /** The indexes [start, end) of the keys in `range`. */
  span(range: KeyRange): [start: number, end: number] {
    const start = range.gte === undefined ? 0 : this.#bound(range.gte, false);
    let end = range.lt !== undefined ? this.#bound(range.lt, false) : range.lte !== undefined ? this.#bound(range.lte, true) : this.keys.length;
    if (range.limit !== undefined && range.limit >= 0) end = Math.min(end, start + range.limit);
    return [start, Math.max(start, end)];
  }
}

/** A record store's database held in memory; starts open and empty. */
export class MemoryDatabase implements StoreDatabase {
  readonly #areas = new Map<string, SortedArea>();
  #open = true;

  #area(name: string): SortedArea {
    if (!this.#open) throw new MeshError('STORE_CLOSED', 'the memory database is closed');
    let area = this.#areas.get(name);
    if (!area) {
      area = new SortedArea();
      this.#areas.set(name, area);
    }
    return area;
  }

  async open(): Promise<void> {
    this.#open = true;
  }

  async close(): Promise<void> {
    this.#open = false;
  }

  async get(area: string, key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.#area(area).get(key);
  }

  async getMany(area: string, keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    const sorted = this.#area(area);
    return keys.map((key) => sorted.get(key));
  }

  async keys(area: string, range: KeyRange = {}): Promise<Uint8Array[]> {
    const sorted = this.#area(area);
    return sorted.keys.slice(...sorted.span(range));
  }

  async values(area: string, range: KeyRange = {}): Promise<Uint8Array[]> {
    const sorted = this.#area(area);
    return sorted.values.slice(...sorted.span(range));
  }

  async *iterate(area: string, range: KeyRange = {}): AsyncGenerator<[Uint8Array, Uint8Array]> {
    const sorted = this.#area(area);
    // Copied at the start, so writes during the walk neither skip nor repeat an entry.
    const [start, end] = sorted.span(range);
    const keys = sorted.keys.slice(start, end);
    const values = sorted.values.slice(start, end);
    for (let i = 0; i < keys.length; i++) yield [keys[i]!, values[i]!];
  }

  async write(changes: readonly StoreWrite[], _options: { sync: boolean }): Promise<void> {
    // All or none: nothing here can fail once the first change is applied (a closed database
    // throws at the first).
    for (const change of changes) {
      const area = this.#area(change.area);
      if (change.type === 'put') area.put(change.key, change.value);
      else area.del(change.key);
    }
  }
}
