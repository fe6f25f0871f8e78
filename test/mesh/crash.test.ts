/**
 * kill -9 test of the record store (issue 2, Done when): a child process
 * (fixtures/crash-writer.ts) writes records to a LevelDB store with `sync: true` and prints
 * each id once its write was acknowledged; the test kills it with SIGKILL at a random moment,
 * reopens the store, and checks that every acknowledged id is there, that the store opens and
 * iterates cleanly, that its counters match its contents, and that each feed is a gap-free
 * prefix (batches are atomic and ordered). The same store directory is reused by every round,
 * so it grows and later rounds crash into a store with history (and LevelDB compactions).
 * A killed process leaves its written data in the OS page cache, so this proves atomicity and
 * recovery, not fsync; that `sync: true` reaches LevelDB is checked by the contract suite.
 *
 * Randomness is seeded and printed; CRASH_SEED=<seed> replays the kill delays and payloads
 * (the exact kill points also depend on the machine's speed). CRASH_ROUNDS overrides the
 * number of rounds (default 50).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { toHex } from '../../mesh/bytes.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { seededRandom } from '../helpers/random.ts';

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
const seed = Number(process.env.CRASH_SEED ?? randomInt(2 ** 31));
const rounds = Number(process.env.CRASH_ROUNDS ?? 50);

/** Children started ahead of their round, so module loading (~0.5 s) overlaps earlier rounds. */
const LOOKAHEAD = 4;

interface Writer {
  child: ChildProcessWithoutNullStreams;
  /** Acknowledged ids: the complete stdout lines other than "ready" and "open". */
  lines: string[];
  stderr: string[];
  /** Resolves when the child has loaded and waits for "go" (or died). */
  ready: Promise<void>;
  /** Resolves when the child has opened the store and starts writing (or died). */
  opened: Promise<void>;
  closed: Promise<unknown>;
}

/** A promise with its resolve function (Promise.withResolvers is not in Node 20). */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function startWriter(dir: string, round: number): Writer {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(seed), String(round)], { stdio: 'pipe' });
  const ready = signal();
  const opened = signal();
  const writer: Writer = { child, lines: [], stderr: [], ready: ready.promise, opened: opened.promise, closed: once(child, 'close') };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!; // a line cut by the kill was never acknowledged
    for (const line of lines) {
      if (line === 'ready') ready.resolve();
      else if (line === 'open') opened.resolve();
      else writer.lines.push(line);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => writer.stderr.push(s));
  child.stdin.on('error', () => undefined); // a child that died early: reported by the exit check
  void writer.closed.then(() => (ready.resolve(), opened.resolve()));
  return writer;
}

/** Reopen the store and check it against everything acknowledged so far. */
async function checkStore(dir: string, acknowledged: Set<string>, round: number): Promise<number> {
  const store = await RecordStore.open(new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' }));
  try {
    const present = new Set<string>();
    const seqs = new Map<string, number[]>();
    for await (const record of store.records()) {
      present.add(toHex(record.id));
      const feed = `${toHex(record.author)}/${toHex(record.feed)}`;
      seqs.set(feed, [...(seqs.get(feed) ?? []), record.seq]);
    }
    const stats = await store.stats();
    assert.equal(stats.corrupt, 0, `round ${round}: corrupt records after the crash`);
    assert.equal(stats.records, present.size, `round ${round}: the record counter disagrees with the records`);
    let ids = 0;
    for await (const _ of store.ids()) ids++;
    assert.equal(ids, present.size);
    const lost = [...acknowledged].filter((id) => !present.has(id));
    assert.deepEqual(lost, [], `round ${round} (seed ${seed}): acknowledged records lost`);
    for (const [feed, list] of seqs) {
      const sorted = list.sort((a, b) => a - b);
      assert.deepEqual(sorted, sorted.map((_, i) => i), `round ${round}: feed ${feed} has gaps`);
    }
    return present.size;
  } finally {
    await store.close();
  }
}

describe('mesh/record-store survives kill -9 (real child processes)', function () {
  // Real processes and real time: the point is to kill a real writer at a real moment.
  // About 15-30 s for 50 rounds on a 2-core machine.
  this.timeout(180_000);
  let dir: string;
  const spares: Writer[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'citizen-crash-'));
    console.log(`    crash test seed ${seed}, ${rounds} rounds (replay: CRASH_SEED=${seed})`);
  });

  after(async () => {
    for (const w of spares) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it(`loses no acknowledged record and leaves a store that opens`, async () => {
    const random = seededRandom(seed);
    const acknowledged = new Set<string>();
    const queue: Writer[] = [];
    let started = 0;
    let roundsWithWrites = 0;
    for (let round = 0; round < rounds; round++) {
      while (started < rounds && queue.length < LOOKAHEAD) {
        const w = startWriter(dir, started++);
        queue.push(w);
        spares.push(w);
      }
      const writer = queue.shift()!;
      await writer.ready;
      const bytes = random(3);
      const delay = 20 + (((bytes[0]! << 8) | bytes[1]!) % 281);
      // Half the rounds count the delay from "go", so some kills land while LevelDB opens and
      // recovers; the other half from "open", so they land among the writes even when slow.
      const fromOpen = (bytes[2]! & 1) === 1;
      writer.child.stdin.write('go\n');
      if (fromOpen) await writer.opened;
      await sleep(delay);
      writer.child.kill('SIGKILL');
      await writer.closed;
      assert.equal(writer.child.signalCode, 'SIGKILL', `round ${round}: the writer stopped by itself: ${writer.stderr.join('')}`);
      const ids = writer.lines;
      if (ids.length > 0) roundsWithWrites++;
      for (const id of ids) acknowledged.add(id);
      await checkStore(dir, acknowledged, round);
    }
    const total = await checkStore(dir, acknowledged, rounds);
    console.log(`    ${acknowledged.size} acknowledged records, ${total} stored, ${roundsWithWrites}/${rounds} rounds acknowledged writes before the kill`);
    assert.ok(acknowledged.size > 0, 'no write was ever acknowledged: the test proves nothing');
    // Low on purpose: on a loaded machine many kills land while the store is still opening.
    assert.ok(roundsWithWrites >= Math.ceil(rounds / 10), 'too few rounds got as far as writing');
  });
});
