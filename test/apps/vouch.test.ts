/**
 * `citizen vouch`: the CLI writes the choice (node running or not); the node signs the vouch
 * once the household is known, and trusts it more from then on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLevel } from 'memory-level';
import { applyVouches } from '../../apps/daemon/vouches.ts';
import { ManualClock } from '../../mesh/clock.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { citizen } from '../helpers/citizen.ts';
import { seededRandom } from '../helpers/random.ts';

async function node(name: string, seed: number): Promise<MeshNode> {
  const store = await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' }));
  const n = new MeshNode({ householdName: name }, { household: Identity.generate(seededRandom(seed)), store, clock: new ManualClock(Date.UTC(2026, 10, 1)) });
  await n.start();
  return n;
}

describe('citizen vouch', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'citizen-vouch-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('records the choice, refuses itself and bad names with one clear line', async () => {
    assert.equal((await citizen(['init', '--name', 'rose', '--data', dir])).code, 0);
    const ok = await citizen(['vouch', 'lilac', '--data', dir]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /rose vouches for lilac/);
    assert.match((await citizen(['vouch', 'lilac', '--data', dir])).stdout, /already vouches/);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'vouches.json'), 'utf8')), { version: 1, households: ['lilac'] });
    for (const bad of [['vouch', 'rose'], ['vouch', 'Not Valid!'], ['vouch']]) {
      const run = await citizen([...bad, '--data', dir]);
      assert.notEqual(run.code, 0);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    }
  });

  it('the node vouches once the household is known, and trusts it from then on', async () => {
    const rose = await node('rose', 1);
    const lilac = await node('lilac', 2);
    assert.deepEqual(await applyVouches(dir, rose, () => undefined), ['lilac']);
    assert.equal(rose.trustOf(lilac.household.id), 0.25);
    const records: Uint8Array[] = [];
    for await (const r of lilac.store.records()) records.push(r.bytes);
    await rose.ingest(records);
    assert.deepEqual(await applyVouches(dir, rose, () => undefined), []);
    assert.equal(rose.trustOf(lilac.household.id), 4);
    // Idempotent: a second pass publishes nothing new.
    const before = (await rose.store.stats()).records;
    await applyVouches(dir, rose, () => undefined);
    assert.equal((await rose.store.stats()).records, before);
  });
});
