/**
 * Runs the record store's contract suite (record-store.contract.ts) against both databases the
 * store is built for: memory-level (tests, simulator) and LevelDB on disk in a temporary
 * directory (the daemon), which is removed afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import { describeRecordStoreContract } from './record-store.contract.ts';

describeRecordStoreContract('memory-level', () => ({
  async create() {
    const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' });
    // memory-level keeps its data across close() and open(): a reopen reads it back.
    return { db, reopen: async () => db };
  },
  async cleanup() {},
}));

describeRecordStoreContract('level (LevelDB on disk)', () => {
  const dirs: string[] = [];
  return {
    async create() {
      const dir = await mkdtemp(join(tmpdir(), 'citizen-record-store-'));
      dirs.push(dir);
      const open = () => new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
      return { db: open(), reopen: async () => open() };
    },
    async cleanup() {
      await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
});
