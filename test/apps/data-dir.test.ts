/**
 * The data directory (apps/daemon/data-dir.ts): a household is created once, even when two
 * processes (`citizen init`, or two `citizen start` on a fresh directory) race to create it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Identity } from '../../mesh/identity.ts';

const DATA_DIR = new URL('../../apps/daemon/data-dir.ts', import.meta.url).href;

type Outcome = { ok: boolean; fingerprint?: string; code?: string };

/** `racers` threads, released together for each path in turn, each calling init on it; outcomes per path. */
async function race(paths: string[], racers: number, action: 'init' | 'member' = 'init'): Promise<Outcome[][]> {
  const gates = new Int32Array(new SharedArrayBuffer(4 * paths.length));
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import('tsx/esm/api').then(({ register }) => { register(); return import(workerData.module); }).then(({ DataDir }) => {
      const { gates, paths, racers } = workerData;
      const results = [];
      paths.forEach((path, round) => {
        Atomics.add(gates, round, 1);
        while (Atomics.load(gates, round) < racers) Atomics.wait(gates, round, Atomics.load(gates, round), 5);
        try {
          const dir = new DataDir(path);
          const identity = workerData.action === 'init' ? dir.init('rose').identity : dir.memberIdentity('bob');
          results.push({ ok: true, fingerprint: identity.fingerprint });
        } catch (err) {
          results.push({ ok: false, code: err.code });
        }
      });
      parentPort.postMessage(results);
    });`;
  const workers = Array.from({ length: racers }, () => new Worker(code, { eval: true, workerData: { module: DATA_DIR, paths, gates, racers, action } }));
  try {
    const perWorker = await Promise.all(workers.map((w) => new Promise<Outcome[]>((resolve, reject) => w.once('message', resolve).once('error', reject))));
    return paths.map((_, round) => perWorker.map((results) => results[round]!));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

describe('apps/daemon/data-dir', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'citizen-datadir-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a household once when several processes race to, and keeps the winner\'s key', async () => {
    const paths = Array.from({ length: 8 }, (_, round) => join(dir, `round-${round}`));
    const rounds = await race(paths, 3);
    rounds.forEach((outcomes, round) => {
      const path = paths[round]!;
      const winners = outcomes.filter((o) => o.ok);
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(outcomes)}`);
      assert.deepEqual(outcomes.filter((o) => !o.ok).map((o) => o.code), ['ALREADY_INITIALISED', 'ALREADY_INITIALISED']);
      const onDisk = Identity.importSecret(JSON.parse(readFileSync(join(path, 'keys', 'household.json'), 'utf8')));
      assert.equal(onDisk.fingerprint, winners[0]!.fingerprint, `round ${round}: the key on disk is the one the winner uses`);
      assert.deepEqual(readdirSync(join(path, 'keys')).sort(), ['household.json', 'members'], 'no temp files left');
    });
  });

  it('creates a member\'s keys once when the node and "citizen user add" race to', async () => {
    const paths = Array.from({ length: 8 }, (_, round) => join(dir, `member-${round}`));
    const rounds = await race(paths, 3, 'member');
    rounds.forEach((outcomes, round) => {
      const onDisk = Identity.importSecret(JSON.parse(readFileSync(join(paths[round]!, 'keys', 'members', 'bob.json'), 'utf8')));
      assert.deepEqual(
        outcomes.map((o) => o.fingerprint),
        outcomes.map(() => onDisk.fingerprint),
        `round ${round}: every process uses the key on disk`,
      );
      assert.deepEqual(readdirSync(join(paths[round]!, 'keys', 'members')), ['bob.json'], 'no temp files left');
    });
  });

  it('refuses a config.json that is valid JSON but no config (null, a number, a list) with CONFIG_INVALID', async () => {
    const { DataDir } = (await import(DATA_DIR)) as typeof import('../../apps/daemon/data-dir.ts');
    const data = new DataDir(join(dir, 'odd-config'));
    data.init('rose');
    for (const text of ['null', '42', '[]', '"rose"']) {
      writeFileSync(data.configPath, text);
      assert.throws(() => data.readConfig(), { code: 'CONFIG_INVALID' }, text);
    }
  });
});
