/**
 * Record store figures on LevelDB on disk (the `level` package, a fresh temporary directory):
 * records stored per second in batches, with and without fsync, reads by id, the size on disk,
 * and the process's RSS once the store holds 100,000 records. Then the simulator's way, in
 * memory: records offered one at a time, new and again, on `MemoryDatabase` and, for
 * comparison, memory-level. The store takes records that are already verified, so these carry
 * zero signatures: the figures are the store's alone.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Level } from 'level';
import { MemoryLevel } from 'memory-level';
import { MemoryDatabase } from '../mesh/memory-database.ts';
import { RecordStore } from '../mesh/record-store.ts';
import { createRecord, RecordKind, type Record } from '../mesh/record.ts';
import { seal } from '../mesh/seal.ts';
import { seededRandom } from '../test/helpers/random.ts';
import { makeAuthors, T0, TTL_30_DAYS, TYPICAL_PAYLOAD, zeroSignature } from './fixtures.ts';
import type { Report } from './harness.ts';

export interface StoreBenchOptions {
  records: number;
  batch: number;
  syncedRecords: number;
}

const AUTHORS = 100;
const FEEDS_PER_AUTHOR = 10;

async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await directorySize(path) : (await stat(path)).size;
  }
  return total;
}

const MiB = 2 ** 20;

/** A full garbage collection, so memory figures count what is kept, not what awaits collection. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Record number i: author i % 100, one of ten feeds, seq counting up within each feed. */
function makeRecordAt(random: (n: number) => Uint8Array): (i: number) => Record {
  const authors = makeAuthors(AUTHORS, 5, zeroSignature);
  const readers = makeAuthors(4, 6);
  const sealedPayloads = readers.map((r) => seal(random(TYPICAL_PAYLOAD - 58), [r.agreementKey], authors[0]!.id, random));
  const payload = random(TYPICAL_PAYLOAD);
  return (i: number): Record => {
    const j = Math.floor(i / AUTHORS);
    const sealed = i % 10 === 0;
    return createRecord(
      {
        kind: sealed ? RecordKind.Message : RecordKind.DocumentUpdate,
        sealed,
        feed: Uint8Array.of(0, 0, 0, 0, 0, 0, (i % AUTHORS) & 0xff, j % FEEDS_PER_AUTHOR),
        seq: Math.floor(j / FEEDS_PER_AUTHOR),
        time: T0 + Math.floor(i / 10),
        ttl: TTL_30_DAYS,
        payload: sealed ? sealedPayloads[(i / 10) % sealedPayloads.length]! : payload,
      },
      authors[i % AUTHORS]!,
    );
  };
}

export async function benchStore(report: Report, options: StoreBenchOptions): Promise<void> {
  const { records: total, batch, syncedRecords } = options;
  report.section(`Record store (Level on disk, ${AUTHORS} authors, 10% sealed, 100-byte payloads)`);
  const random = seededRandom(4);
  const recordAt = makeRecordAt(random);

  const dir = await mkdtemp(join(tmpdir(), 'citizen-bench-'));
  try {
    collectGarbage();
    const rssBefore = process.memoryUsage().rss;
    const db = new Level<Uint8Array, Uint8Array>(join(dir, 'store'), { keyEncoding: 'view', valueEncoding: 'view' });
    // Default quotas: 1,000 records from each of 100 authors fit them.
    const store = await RecordStore.open(db);
    // Every stored id, packed, for the reads below (an array of 100,000 small arrays would
    // weigh on the memory figure).
    const singles = Math.max(50, Math.floor(syncedRecords / 20));
    const ids = new Uint8Array((total + syncedRecords + singles) * 32);
    let stored = 0;
    let next = 0;
    /** Put `count` new records in batches; returns the milliseconds spent inside put(). */
    const putRecords = async (count: number, size: number, sync: boolean): Promise<number> => {
      let ms = 0;
      for (let done = 0; done < count; done += size) {
        const recs: Record[] = [];
        for (let k = 0; k < Math.min(size, count - done); k++) recs.push(recordAt(next++));
        const t = performance.now();
        const results = await store.put(recs, { sync });
        ms += performance.now() - t;
        for (const r of results) {
          if (r.status !== 'stored') throw new Error(`bench record refused by the store: ${r.status}`);
          ids.set(r.id, 32 * stored++);
        }
      }
      return ms;
    };

    const ms = await putRecords(total, batch, false);
    report.add(`records stored, batches of ${batch}, no fsync`, total / (ms / 1000), 'records/s', `${total.toLocaleString('en-US')} records`);
    collectGarbage();
    const memory = process.memoryUsage();
    report.add(`RSS after storing ${total.toLocaleString('en-US')} records`, memory.rss / MiB, 'MiB', `${((memory.rss - rssBefore) / MiB).toFixed(0)} MiB more than before opening the store`);
    report.add('JS heap used at that point (after a full GC)', memory.heapUsed / MiB, 'MiB');

    const syncedMs = await putRecords(syncedRecords, batch, true);
    report.add(`records stored, batches of ${batch}, fsync each batch`, syncedRecords / (syncedMs / 1000), 'records/s');
    const singleMs = await putRecords(singles, 1, true);
    report.add('records stored one at a time, fsync each', singles / (singleMs / 1000), 'records/s', 'a user’s acknowledged write');

    const lookups = 20_000;
    const t = performance.now();
    for (let i = 0; i < lookups; i++) {
      const k = random(4).reduce((a, b) => a * 256 + b, 0) % stored;
      const id = ids.subarray(32 * k, 32 * k + 32);
      if (!(await store.get(id))) throw new Error('stored record not found');
    }
    report.add('records read by id (random)', lookups / ((performance.now() - t) / 1000), 'records/s');

    const stats = await store.stats();
    await store.close();
    const onDisk = await directorySize(dir);
    report.add('store size on disk', onDisk / MiB, 'MiB', `${stats.records.toLocaleString('en-US')} records, ${(stats.bytes / MiB).toFixed(1)} MiB of record bytes`);
    report.add('disk bytes per record', onDisk / stats.records, 'bytes');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await benchMemoryStores(report, recordAt, Math.min(total, 20_000));
}

/**
 * The simulator's way with a store: records offered one at a time as sync hears them, each
 * new once and then again (a duplicate), on `MemoryDatabase` and, for comparison, memory-level.
 */
async function benchMemoryStores(report: Report, recordAt: (i: number) => Record, count: number): Promise<void> {
  report.section(`Record store in memory, one record a put (as in the simulator), ${count.toLocaleString('en-US')} records`);
  const records = Array.from({ length: count }, (_, i) => recordAt(i));
  const databases = [
    ['MemoryDatabase', () => new MemoryDatabase()],
    ['memory-level', () => new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' })],
  ] as const;
  for (const [name, makeDatabase] of databases) {
    const store = await RecordStore.open(makeDatabase());
    let t = performance.now();
    for (const record of records) {
      const [result] = await store.put([record]);
      if (result!.status !== 'stored') throw new Error(`bench record refused by the store: ${result!.status}`);
    }
    report.add(`new records stored, ${name}`, count / ((performance.now() - t) / 1000), 'records/s');
    t = performance.now();
    for (const record of records) await store.put([record]);
    report.add(`records offered again (duplicates), ${name}`, count / ((performance.now() - t) / 1000), 'records/s');
    await store.close();
  }
}
