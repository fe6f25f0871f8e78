/**
 * MeshNode: publishing, ingesting from a neighbour in any order (records wait for their
 * author's directory entry), and refusing forged or malformed bytes with a counted reason.
 */
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { toHex } from '../../mesh/bytes.ts';
import { ManualClock } from '../../mesh/clock.ts';
import { Identity } from '../../mesh/identity.ts';
import { MeshNode } from '../../mesh/node.ts';
import { createRecord, RecordKind, type Record } from '../../mesh/record.ts';
import { RecordStore } from '../../mesh/record-store.ts';
import { memoryNode } from '../helpers/memory-node.ts';
import { seededRandom, shuffle } from '../helpers/random.ts';

async function allRecords(node: MeshNode): Promise<Record[]> {
  const out: Record[] = [];
  for await (const r of node.store.records()) out.push(r);
  return out;
}

describe('mesh/node', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 1));

  it('announces its household once, and certifies members idempotently', async () => {
    const rose = await memoryNode('rose', clock, 1);
    const alice = Identity.generate(seededRandom(2));
    await rose.certifyMember('alice', alice);
    await rose.certifyMember('alice', alice);
    assert.equal((await allRecords(rose)).length, 2);
    assert.equal(rose.directory.member('alice@rose')?.name, 'alice');
    // A restart reads the directory back from the store and publishes nothing new.
    await rose.stop();
    const again = new MeshNode({ householdName: 'rose' }, { household: rose.household, store: rose.store, clock });
    await again.start();
    assert.equal((await allRecords(again)).length, 2);
    assert.ok(again.directory.member('alice@rose'));
  });

  it('ingests a neighbour’s records in any order: member records wait for the directory entry', async () => {
    for (const seed of [11, 12, 13, 14, 15]) {
      const rose = await memoryNode('rose', clock, seed);
      const oak = await memoryNode('oak', clock, seed + 100);
      const alice = Identity.generate(seededRandom(seed + 200));
      await rose.certifyMember('alice', alice);
      for (let i = 0; i < 5; i++) {
        await rose.publish(alice, { kind: RecordKind.Message, feed: new Uint8Array(8).fill(7), payload: new Uint8Array([i]) });
      }
      const records = shuffle(await allRecords(rose), seededRandom(seed));
      const results = [];
      for (const r of records) results.push(...(await oak.ingest([r.bytes, r.bytes])));
      assert.ok(results.every((x) => x.status !== 'rejected'), `seed ${seed}: ${JSON.stringify(results)}`);
      assert.equal(oak.pendingCount, 0, `seed ${seed}`);
      const oakIds = new Set((await allRecords(oak)).map((r) => toHex(r.id)));
      for (const r of records) assert.ok(oakIds.has(toHex(r.id)), `seed ${seed}: missing ${toHex(r.id)}`);
      assert.ok(oak.directory.member('alice@rose'));
    }
  });

  it('settles each result of one ingest call in order: copies, records held already, waiting and bad ones', async () => {
    const rose = await memoryNode('rose', clock, 31);
    const oak = await memoryNode('oak', clock, 32);
    const alice = Identity.generate(seededRandom(33));
    await rose.certifyMember('alice', alice);
    const feed = new Uint8Array(8).fill(3);
    const a = await rose.publish(rose.household, { kind: RecordKind.Message, feed, payload: new Uint8Array([1]) });
    const b = await rose.publish(rose.household, { kind: RecordKind.Message, feed, payload: new Uint8Array([2]) });
    const byAlice = await rose.publish(alice, { kind: RecordKind.Message, feed, payload: new Uint8Array([3]) });
    const entry = (await allRecords(rose)).find((r) => r.kind === RecordKind.Directory && r.authorKey !== null)!;
    await oak.ingest([entry.bytes, b.bytes]);
    const announced: string[] = [];
    oak.on('record', (r) => announced.push(toHex(r.id)));
    const results = await oak.ingest([a.bytes, byAlice.bytes, a.bytes, new Uint8Array([9]), b.bytes, a.bytes]);
    // The first copy in a batch is stored; a later copy finds the first still 'stored' and
    // settles it again, so every copy of a fresh record reads 'stored' and is announced.
    assert.deepEqual(
      results.map((r) => r.status),
      ['stored', 'pending', 'stored', 'rejected', 'duplicate', 'stored'],
    );
    assert.deepEqual(announced, [toHex(a.id), toHex(a.id), toHex(a.id)]);
  });

  it('rejects forged, mutated and garbage bytes with a counted reason, storing nothing', async () => {
    const rose = await memoryNode('rose', clock, 21);
    const oak = await memoryNode('oak', clock, 22);
    await oak.ingest((await allRecords(rose)).map((r) => r.bytes));
    const before = (await allRecords(oak)).length;
    // Signed by a stranger's key while claiming the rose household's key id: bad signature.
    const mallory = Identity.generate(seededRandom(23));
    const forged = createRecord(
      { kind: RecordKind.Message, feed: new Uint8Array(8), seq: 0, time: Math.floor(clock.now() / 1000), payload: new Uint8Array(3) },
      mallory,
    );
    const claimed = Uint8Array.from(forged.bytes);
    claimed.set(rose.household.id, 2);
    const mutated = Uint8Array.from((await allRecords(rose))[0]!.bytes);
    mutated[mutated.length - 70]! ^= 0x01;
    const results = await oak.ingest([claimed, mutated, new Uint8Array([1, 2, 3]), new Uint8Array(0)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected', 'rejected'],
    );
    assert.equal(results[0]!.code, 'RECORD_BAD_SIGNATURE');
    assert.equal(results[1]!.code, 'RECORD_BAD_SIGNATURE');
    assert.match(results[2]!.code!, /^RECORD_/);
    assert.equal((await allRecords(oak)).length, before);
    assert.equal(oak.rejected.get('RECORD_BAD_SIGNATURE'), 2);
  });

  it('refuses records from the future and holds unknown authors only up to its limit', async () => {
    const rose = await memoryNode('rose', clock, 31);
    const oak = new MeshNode(
      { householdName: 'oak', pendingLimit: 3 },
      { household: Identity.generate(seededRandom(32)), store: await RecordStore.open(new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view' })), clock },
    );
    await oak.start();
    const stranger = Identity.generate(seededRandom(33));
    const now = Math.floor(clock.now() / 1000);
    const future = createRecord({ kind: RecordKind.Directory, feed: new Uint8Array(8), seq: 0, time: now + 3600, fullKey: true, payload: new Uint8Array(1) }, stranger);
    assert.equal((await oak.ingest([future.bytes]))[0]!.code, 'RECORD_FUTURE');
    const unknown = [0, 1, 2, 3, 4].map((seq) =>
      createRecord({ kind: RecordKind.Message, feed: new Uint8Array(8), seq, time: now, payload: new Uint8Array(1) }, stranger).bytes,
    );
    const results = await oak.ingest(unknown);
    assert.deepEqual(results.map((r) => r.status), ['pending', 'pending', 'pending', 'rejected', 'rejected']);
    assert.equal(results[3]!.code, 'PENDING_FULL');
    void rose;
  });

  it('carries documents: created and edited on one node, identical on a neighbour and after a restart', async () => {
    const rose = await memoryNode('rose', clock, 41);
    const oak = await memoryNode('oak', clock, 42);
    const alice = Identity.generate(seededRandom(43));
    const dan = Identity.generate(seededRandom(44));
    await rose.certifyMember('alice', alice);
    await oak.certifyMember('dan', dan);
    const room = await rose.createDocument(alice, { type: 'chat-room', name: 'street', writers: [alice.id] });
    const feed = room.meta!.feed;
    await rose.updateDocument(alice, feed, (doc) => doc.getArray<string>('messages').push(['hello']));
    assert.equal(await rose.updateDocument(alice, feed, () => undefined), null, 'no change, no record');
    await assert.rejects(rose.updateDocument(dan, feed, (doc) => doc.getArray<string>('messages').push(['x'])));
    await rose.grantWriters(alice, feed, [dan.id]);
    // oak learns everything, in reverse order; dan then writes on oak.
    await oak.ingest((await allRecords(rose)).reverse().map((r) => r.bytes));
    await oak.updateDocument(dan, feed, (doc) => doc.getArray<string>('messages').push(['hi from oak']));
    await rose.ingest((await allRecords(oak)).map((r) => r.bytes));
    const content = (n: MeshNode) => n.documents.get(feed)!.ydoc.getArray<string>('messages').toJSON();
    assert.deepEqual(content(rose), content(oak));
    assert.equal(content(rose).length, 2);
    await rose.stop();
    const again = new MeshNode({ householdName: 'rose' }, { household: rose.household, store: rose.store, clock });
    await again.start();
    assert.deepEqual(content(again), content(oak));
  });

  it('a document change the store refuses (a full disk) leaves nothing in memory: not shown, and the next change gets its seq', async () => {
    const rose = await memoryNode('rose', clock, 51);
    const alice = Identity.generate(seededRandom(52));
    await rose.certifyMember('alice', alice);
    const put = rose.store.put.bind(rose.store);
    let refuse = false;
    rose.store.put = (records, options) => (refuse ? Promise.reject(new Error('disk full')) : put(records, options));
    // A document whose genesis is refused was never made.
    refuse = true;
    const before = [...rose.documents].length;
    await assert.rejects(rose.createDocument(alice, { type: 'chat-room', name: 'lost', writers: 'anyone' }), /disk full/);
    assert.equal([...rose.documents].length, before);
    refuse = false;
    const room = await rose.createDocument(alice, { type: 'chat-room', name: 'street', writers: 'anyone' });
    const feed = room.meta!.feed;
    const messages = () => rose.documents.get(feed)!.ydoc.getArray<string>('messages').toJSON();
    await rose.updateDocument(alice, feed, (doc) => doc.getArray<string>('messages').push(['one']));
    refuse = true;
    await assert.rejects(rose.updateDocument(alice, feed, (doc) => doc.getArray<string>('messages').push(['refused'])), /disk full/);
    assert.deepEqual(messages(), ['one']);
    refuse = false;
    await rose.updateDocument(alice, feed, (doc) => doc.getArray<string>('messages').push(['two']));
    assert.deepEqual(messages(), ['one', 'two']);
    // What is in memory is what a restart reads back.
    await rose.stop();
    const again = new MeshNode({ householdName: 'rose' }, { household: rose.household, store: rose.store, clock });
    await again.start();
    assert.deepEqual(again.documents.get(feed)!.ydoc.getArray<string>('messages').toJSON(), ['one', 'two']);
  });
});
