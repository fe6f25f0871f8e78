/**
 * Runs the record store's contract suite (record-store.contract.ts) against every database the
 * store is built for: `MemoryDatabase` (the simulator, tests), LevelDB on disk in a temporary
 * directory (the daemon), which is removed afterwards, and memory-level (other tests open
 * stores on it), both through `LevelDatabase`. Then what only LevelDB shows: the key layout
 * on disk and `sync` reaching it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import { concatBytes, fromUtf8, toHex, utf8 } from '../../mesh/bytes.ts';
import { Identity } from '../../mesh/identity.ts';
import { LevelDatabase } from '../../mesh/level-database.ts';
import { MemoryDatabase } from '../../mesh/memory-database.ts';
import { createRecord, RecordKind } from '../../mesh/record.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { seededRandom } from '../helpers/random.ts';
import { describeRecordStoreContract } from './record-store.contract.ts';

describeRecordStoreContract('MemoryDatabase', () => ({
  async create() {
    const db = new MemoryDatabase();
    // A MemoryDatabase keeps its data across close() and open(): a reopen reads it back.
    return { db, reopen: async () => db };
  },
  async cleanup() {},
}));

describeRecordStoreContract('memory-level (through LevelDatabase)', () => ({
  async create() {
    const db = new LevelDatabase(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
    return { db, reopen: async () => db };
  },
  async cleanup() {},
}));

/** A fresh temporary directory for a LevelDB store, and a way to remove them all. */
function temporaryDirectories(): { make(): Promise<string>; removeAll(): Promise<void> } {
  const dirs: string[] = [];
  return {
    async make() {
      const dir = await mkdtemp(join(tmpdir(), 'citizen-record-store-'));
      dirs.push(dir);
      return dir;
    },
    async removeAll() {
      await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}

const openLevel = (dir: string) => new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });

describeRecordStoreContract('level (LevelDB on disk, through LevelDatabase)', () => {
  const dirs = temporaryDirectories();
  return {
    async create() {
      const dir = await dirs.make();
      return { db: new LevelDatabase(openLevel(dir)), reopen: async () => new LevelDatabase(openLevel(dir)) };
    },
    cleanup: dirs.removeAll,
  };
});

describe('mesh/record-store on LevelDB', () => {
  const dirs = temporaryDirectories();
  after(dirs.removeAll);

  it('opens a Level database given as is, asks LevelDB to sync durable writes, and keeps the documented key layout on disk', async () => {
    const dir = await dirs.make();
    const level = openLevel(dir);
    const seen: unknown[] = [];
    const batch = level.batch.bind(level) as (ops: unknown, options: unknown) => Promise<void>;
    (level as { batch: unknown }).batch = (ops: unknown, options: unknown) => {
      seen.push(options);
      return batch(ops, options);
    };
    const store = await RecordStore.open(level);
    const author = Identity.generate(seededRandom(7));
    const make = (seq: number) =>
      createRecord({ kind: RecordKind.DocumentUpdate, feed: new Uint8Array(8).fill(1), seq, time: 1_790_000_000, ttl: 0, sealed: false, payload: Uint8Array.of(seq) }, author);
    const record = make(0);
    await store.put([record], { sync: true });
    await store.put([make(1)]);
    await store.putLocal('cursor', 'x', { sync: true });
    await store.close();
    // A write that need not be durable passes empty options: not syncing is the default.
    assert.deepEqual(seen, [{ sync: true }, { sync: true }, {}, { sync: true }]);

    const raw = openLevel(dir);
    const onDisk = (area: string, key: Uint8Array) => concatBytes(utf8(`!${area}!`), key);
    const keys = new Set<string>();
    for await (const key of raw.keys()) keys.add(toHex(key));
    for (const [area, key] of [['r', record.id], ['m', utf8('version')], ['m', utf8('totals')]] as const) assert.ok(keys.has(toHex(onDisk(area, key))), `!${area}!`);
    assert.equal(fromUtf8((await raw.get(onDisk('l', utf8('cursor'))))!), 'x');
    await raw.close();
  });
});
