/**
 * CRDT documents in signed records: payload codecs, order- and duplicate-independent
 * materialisation, write permissions, forks, malformed input and the pending bound.
 *
 * Randomised tests are seeded: the base seed is printed, a failure names the scenario seed,
 * and FC_SEED=<seed> replays it (scenarios use FC_SEED, FC_SEED+1, ...; fast-check gets
 * FC_SEED directly).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as Y from 'yjs';
import { equalBytes, toHex } from '../../mesh/bytes.ts';
import { MeshError } from '../../mesh/errors.ts';
import { Identity, type RandomBytes } from '../../mesh/identity.ts';
import { createRecord, RecordKind, type Record } from '../../mesh/record.ts';
import { createDocument, DocumentReplica, PendingBudget, type ApplyOutcome } from '../../mesh/document.ts';
import { Documents } from '../../mesh/documents.ts';
import {
  decodeAcl,
  decodeGenesis,
  deriveFeedId,
  encodeAcl,
  encodeGenesis,
  type GenesisPayload,
} from '../../mesh/document-payload.ts';
import { clientIdFor } from '../../mesh/document-update.ts';
import { seededRandom, shuffle } from '../helpers/random.ts';
import { applyByteEdits, byteEdit } from '../helpers/byte-edits.ts';

const SEED = Number(process.env.FC_SEED ?? 20260305);
const SCENARIOS = 10;
const PERMUTATIONS = 20;
const T0 = 1_790_000_000;
/** Hostile records in a scenario use seqs from here, apart from the edits. */
const HOSTILE_SEQ = 1000;

/** An integer in [0, n) from a seeded byte source. */
function int(random: RandomBytes, n: number): number {
  const b = random(4);
  return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) % n;
}

/** JSON with object keys sorted: Y.Map iterates keys in local insertion order, not by state. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

/** What must be identical between replicas: state vector and the content of every shared type. */
function snapshot(doc: Y.Doc): string {
  const content = {
    m: doc.getMap('m').toJSON(),
    a: doc.getArray('a').toJSON(),
    t: doc.getText('t').toString(),
  };
  return `${toHex(Y.encodeStateVector(doc))} ${canonicalJson(content)}`;
}

/** A few random edits of a map, an array and a text, marked with the author's tag. */
function randomEdit(doc: Y.Doc, random: RandomBytes, tag: string): void {
  const map = doc.getMap<string>('m');
  const array = doc.getArray<string>('a');
  const text = doc.getText('t');
  for (let n = 1 + int(random, 3); n > 0; n--) {
    switch (int(random, 6)) {
      case 0:
        map.set(`k${int(random, 6)}`, `${tag}${int(random, 1000)}`);
        break;
      case 1:
        map.delete(`k${int(random, 6)}`);
        break;
      case 2:
        array.insert(int(random, array.length + 1), [`${tag}${int(random, 1000)}`]);
        break;
      case 3:
        if (array.length > 0) array.delete(int(random, array.length), 1);
        break;
      case 4:
        text.insert(int(random, text.length + 1), tag.repeat(1 + int(random, 3)));
        break;
      default:
        if (text.length > 0) text.delete(int(random, text.length), 1 + int(random, 2));
    }
  }
}

/**
 * A client that writes Yjs updates without a replica's checks: someone writing before their
 * grant, or someone who never may write. It signs whatever it produces.
 */
class RawWriter {
  readonly doc = new Y.Doc();
  seq = 0;
  constructor(
    readonly identity: Identity,
    readonly feed: Uint8Array,
  ) {
    this.doc.clientID = clientIdFor(identity.id);
  }

  hear(record: Record): void {
    if (record.kind === RecordKind.DocumentUpdate) Y.applyUpdate(this.doc, record.payload);
  }

  write(edit: (doc: Y.Doc) => void, time: number): Record | null {
    let update: Uint8Array | null = null;
    const listener = (u: Uint8Array) => (update = u);
    this.doc.on('update', listener);
    this.doc.transact(() => edit(this.doc));
    this.doc.off('update', listener);
    if (!update) return null;
    return createRecord({ kind: RecordKind.DocumentUpdate, feed: this.feed, seq: this.seq++, time, payload: update }, this.identity);
  }
}

function assertReason(result: ApplyOutcome, status: string, code: string): void {
  assert.equal(result.status, status, `expected ${status}/${code}, got ${result.status}/${result.reason?.code}`);
  assert.ok(result.reason instanceof MeshError);
  assert.equal(result.reason.code, code);
}

function applyAll(replica: DocumentReplica, records: readonly Record[]): void {
  for (const record of records) replica.apply(record);
}

/** Run `body` for seeds base, base+1, ...; a failure names the seed that replays it. */
function forEachSeed(count: number, body: (seed: number) => void): void {
  for (let i = 0; i < count; i++) {
    const seed = SEED + i;
    try {
      body(seed);
    } catch (err) {
      if (err instanceof Error) err.message = `[scenario seed ${seed}: replay with FC_SEED=${seed}] ${err.message}`;
      throw err;
    }
  }
}

interface Scenario {
  feed: Uint8Array;
  records: Record[];
  /** listed: O and A by the genesis, B by a grant, X never. anyone: all four write. */
  mode: 'listed' | 'anyone';
  x: Identity;
  genesis: Record;
  grant: Record | null;
}

/**
 * Owner O and genesis writer A edit through replicas; B writes from the start but is granted
 * only later (listed mode); X is never granted. They hear random subsets of each other's
 * records between edits, so updates depend on each other. Hostile records join the set: X's
 * forged genesis, ACLs by X and by A, a garbage update and an update carrying O's client.
 */
function buildScenario(seed: number): Scenario {
  const random = seededRandom(seed);
  const mode = seed % 2 === 0 ? 'listed' : 'anyone';
  const [owner, a, b, x] = [0, 1, 2, 3].map(() => Identity.generate(random)) as [Identity, Identity, Identity, Identity];
  const { feed, genesis } = createDocument(
    owner,
    { type: 'list', name: 'Shopping', writers: mode === 'anyone' ? 'anyone' : [a.id] },
    { time: T0, random },
  );
  const replicas = [new DocumentReplica(feed), new DocumentReplica(feed)];
  for (const r of replicas) r.apply(genesis);
  const raw = [new RawWriter(b, feed), new RawWriter(x, feed)];
  const writers = [owner, a];
  const tags = ['o', 'a', 'b', 'X'];
  const records: Record[] = [genesis];
  const grantStep = mode === 'listed' ? 10 + int(random, 20) : -1;
  let grant: Record | null = null;
  let time = T0;

  const deliver = (actor: number, record: Record) => {
    if (actor < 2) replicas[actor]!.apply(record);
    // Raw writers build only on what they may: not on their own echo, not on X's edits.
    else if (!equalBytes(record.author, raw[actor - 2]!.identity.id) && !equalBytes(record.author, x.id)) raw[actor - 2]!.hear(record);
  };

  for (let step = 0; step < 40; step++) {
    const actor = int(random, 4);
    if (int(random, 2) === 0) for (const r of records) if (int(random, 3) === 0) deliver(actor, r);
    const edit = (doc: Y.Doc) => randomEdit(doc, random, tags[actor]!);
    let record: Record | null;
    if (actor < 2) {
      const replica = replicas[actor]!;
      const id = writers[actor]!;
      record = replica.makeUpdate(id, edit, { seq: replica.nextSeq(id.id), time: ++time });
    } else {
      record = raw[actor - 2]!.write(edit, ++time);
    }
    if (record) records.push(record);
    if (step === grantStep) {
      grant = replicas[0]!.grantWriters(owner, [b.id], { seq: replicas[0]!.nextSeq(owner.id), time: ++time });
      records.push(grant);
    }
  }

  // Hostile and malformed records.
  const forged = encodeGenesis({ type: 'list', name: 'Mine now', nonce: random(8), writers: 'anyone' });
  records.push(createRecord({ kind: RecordKind.DocumentGenesis, feed, seq: 0, time, payload: forged }, x));
  records.push(createRecord({ kind: RecordKind.DocumentAcl, feed, seq: HOSTILE_SEQ, time, payload: encodeAcl({ grant: [x.id] }) }, x));
  records.push(createRecord({ kind: RecordKind.DocumentAcl, feed, seq: HOSTILE_SEQ, time, payload: encodeAcl({ grant: [x.id] }) }, a));
  records.push(createRecord({ kind: RecordKind.DocumentUpdate, feed, seq: HOSTILE_SEQ + 1, time, payload: random(40) }, a));
  const ownerUpdate = records.find((r) => r.kind === RecordKind.DocumentUpdate && equalBytes(r.author, owner.id));
  if (ownerUpdate) {
    records.push(createRecord({ kind: RecordKind.DocumentUpdate, feed, seq: HOSTILE_SEQ + 2, time, payload: ownerUpdate.payload }, a));
  }
  return { feed, records, mode, x, genesis, grant };
}

describe('document payloads', () => {
  it('encode a genesis in the documented layout and decode it back', () => {
    const writer = new Uint8Array(8).fill(0x11);
    const genesis: GenesisPayload = { type: 'list', name: 'Hi', nonce: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), writers: [writer] };
    const bytes = encodeGenesis(genesis);
    assert.equal(toHex(bytes), '01' + '0102030405060708' + '04' + toHex(Buffer.from('list')) + '02' + '4869' + '01' + '01' + '11'.repeat(8));
    assert.deepEqual(decodeGenesis(bytes), genesis);
    const anyone = { type: 'chat-room', name: 'Straße 7 ☕', nonce: new Uint8Array(8), writers: 'anyone' as const };
    assert.deepEqual(decodeGenesis(encodeGenesis(anyone)), anyone);
  });

  it('sort and de-duplicate writer lists so each list has one encoding', () => {
    const [p, q] = [new Uint8Array(8).fill(2), new Uint8Array(8).fill(1)];
    const nonce = new Uint8Array(8);
    const one = encodeGenesis({ type: 'list', name: '', nonce, writers: [p, q, p] });
    assert.deepEqual(one, encodeGenesis({ type: 'list', name: '', nonce, writers: [q, p] }));
    assert.deepEqual(decodeAcl(encodeAcl({ grant: [p, q, q] })).grant, [q, p]);
  });

  it('refuse bad input when encoding', () => {
    const nonce = new Uint8Array(8);
    const bad: Array<() => unknown> = [
      () => encodeGenesis({ type: 'Chat Room', name: '', nonce, writers: 'anyone' }),
      () => encodeGenesis({ type: '', name: '', nonce, writers: 'anyone' }),
      () => encodeGenesis({ type: 'list', name: 'x'.repeat(129), nonce, writers: 'anyone' }),
      () => encodeGenesis({ type: 'list', name: '', nonce: new Uint8Array(7), writers: 'anyone' }),
      () => encodeGenesis({ type: 'list', name: '', nonce, writers: [new Uint8Array(32)] }),
      () => encodeAcl({ grant: [] }),
    ];
    for (const f of bad) assert.throws(f, (e: unknown) => e instanceof MeshError && e.code === 'DOCUMENT_INVALID');
  });

  it('reject every truncation, a wrong version, unsorted writers and trailing bytes', () => {
    const writers = [new Uint8Array(8).fill(1), new Uint8Array(8).fill(2)];
    const bytes = encodeGenesis({ type: 'mail-thread', name: 'Re: bikes', nonce: new Uint8Array(8).fill(9), writers });
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => decodeGenesis(bytes.subarray(0, n)), (e: unknown) => e instanceof MeshError && /^DOCUMENT_(TRUNCATED|MALFORMED)$/.test(e.code));
    }
    const version = bytes.slice();
    version[0] = 2;
    assert.throws(() => decodeGenesis(version), (e: unknown) => e instanceof MeshError && e.code === 'DOCUMENT_VERSION');
    const swapped = bytes.slice();
    swapped.set(writers[1]!, bytes.length - 16);
    swapped.set(writers[0]!, bytes.length - 8);
    assert.throws(() => decodeGenesis(swapped), (e: unknown) => e instanceof MeshError && e.code === 'DOCUMENT_MALFORMED');
    const trailing = Uint8Array.from([...bytes, 0]);
    assert.throws(() => decodeGenesis(trailing), (e: unknown) => e instanceof MeshError && e.code === 'DOCUMENT_MALFORMED');
    assert.throws(() => decodeAcl(Uint8Array.from([1, 0])), (e: unknown) => e instanceof MeshError && e.code === 'DOCUMENT_MALFORMED');
  });

  it('decoders only ever throw MeshError on random and mutated bytes (fast-check)', () => {
    console.log(`      fast-check seed ${SEED} (FC_SEED=${SEED} replays)`);
    const decoders = [decodeGenesis, decodeAcl];
    const judge = (bytes: Uint8Array) => {
      for (const decode of decoders) {
        let value: unknown;
        try {
          value = decode(bytes);
        } catch (err) {
          assert.ok(err instanceof MeshError, `not a MeshError: ${String(err)}`);
          assert.match(err.code, /^DOCUMENT_/);
          continue;
        }
        // Whatever decodes is canonical: it encodes back to the very same bytes.
        const again = decode === decodeGenesis ? encodeGenesis(value as GenesisPayload) : encodeAcl(value as { grant: Uint8Array[] });
        assert.deepEqual(again, bytes);
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => judge(bytes)),
      { seed: SEED, numRuns: 2000 },
    );
    const keyId = fc.uint8Array({ minLength: 8, maxLength: 8 });
    const genesis = fc.record({
      type: fc.constantFrom('chat-room', 'blog', 'mail-thread', 'list', 'directory', 'x-1'),
      name: fc.string({ maxLength: 40 }),
      nonce: fc.uint8Array({ minLength: 8, maxLength: 8 }),
      writers: fc.oneof(fc.constant('anyone' as const), fc.array(keyId, { maxLength: 5 })),
    });
    const payload = fc.oneof(genesis.map(encodeGenesis), fc.array(keyId, { minLength: 1, maxLength: 5 }).map((grant) => encodeAcl({ grant })));
    fc.assert(
      fc.property(payload, fc.array(byteEdit, { minLength: 1, maxLength: 3 }), (bytes, edits) => judge(applyByteEdits(bytes, edits))),
      { seed: SEED, numRuns: 3000 },
    );
  });
});

describe('document replica', () => {
  const random = seededRandom(SEED);
  const owner = Identity.generate(random);
  const writer = Identity.generate(random);
  const stranger = Identity.generate(random);

  it('derive the feed id from the creator and nonce, and learn the meta from the genesis', () => {
    const { feed, genesis } = createDocument(owner, { type: 'blog', name: 'Notes', writers: [writer.id] }, { time: T0, random });
    const payload = decodeGenesis(genesis.payload);
    assert.deepEqual(feed, deriveFeedId(owner.id, payload.nonce));
    assert.equal(genesis.seq, 0);
    const replica = new DocumentReplica(feed);
    assert.equal(replica.meta, null);
    assert.equal(replica.canWrite(owner.id), false);
    assert.equal(replica.apply(genesis).status, 'applied');
    assert.equal(replica.apply(genesis).status, 'duplicate');
    assert.deepEqual(replica.meta, { feed, type: 'blog', name: 'Notes', owner: owner.id, writers: [writer.id], created: T0, genesisId: genesis.id });
    assert.ok(replica.canWrite(owner.id) && replica.canWrite(writer.id) && !replica.canWrite(stranger.id));
    assert.equal(replica.nextSeq(owner.id), 1);
  });

  it("reject a genesis forged for someone else's feed, and one that is not seq 0", () => {
    const { feed, genesis } = createDocument(owner, { type: 'list', name: 'Mine', writers: [] }, { time: T0, random });
    const replica = new DocumentReplica(feed);
    const nonce = decodeGenesis(genesis.payload).nonce;
    // The stranger copies the owner's nonce and claims the feed: the hash binds the creator.
    const forged = createRecord(
      { kind: RecordKind.DocumentGenesis, feed, seq: 0, time: T0, payload: encodeGenesis({ type: 'list', name: 'Mine', nonce, writers: 'anyone' }) },
      stranger,
    );
    assertReason(replica.apply(forged), 'ignored', 'DOCUMENT_FEED_MISMATCH');
    assert.equal(replica.meta, null);
    const late = createRecord({ kind: RecordKind.DocumentGenesis, feed, seq: 3, time: T0, payload: genesis.payload }, owner);
    assertReason(replica.apply(late), 'ignored', 'DOCUMENT_GENESIS_SEQ');
    assert.equal(replica.apply(genesis).status, 'applied');
    assert.equal(replica.canWrite(stranger.id), false);
    assertReason(replica.apply(forged), 'ignored', 'DOCUMENT_FEED_MISMATCH');
  });

  it("hold a non-writer's update until the owner grants, in either order, and ignore grants by others", () => {
    const { feed, genesis } = createDocument(owner, { type: 'chat-room', name: 'Hall', writers: [] }, { time: T0, random });
    const ownerReplica = new DocumentReplica(feed);
    ownerReplica.apply(genesis);
    const early = new RawWriter(writer, feed).write((d) => d.getText('t').insert(0, 'hi from w'), T0 + 1)!;
    const selfGrant = createRecord({ kind: RecordKind.DocumentAcl, feed, seq: 1, time: T0, payload: encodeAcl({ grant: [writer.id] }) }, writer);
    const grant = ownerReplica.grantWriters(owner, [writer.id], { seq: 1, time: T0 + 2 });
    const empty = snapshot(new Y.Doc());

    const a = new DocumentReplica(feed);
    assertReason(a.apply(early), 'pending', 'DOCUMENT_NO_GENESIS');
    assertReason(a.apply(selfGrant), 'pending', 'DOCUMENT_NO_GENESIS');
    assert.equal(a.apply(genesis).status, 'applied');
    assert.equal(snapshot(a.ydoc), empty, 'a non-writer update must not be applied');
    assert.deepEqual(a.counts, { applied: 0, pending: 1, excluded: 0, acls: 0 });
    assertReason(a.apply(selfGrant), 'ignored', 'DOCUMENT_NOT_OWNER');
    assert.equal(a.apply(early).status, 'duplicate');
    assert.equal(a.apply(grant).status, 'applied');
    assert.equal(a.ydoc.getText('t').toString(), 'hi from w');

    const b = new DocumentReplica(feed);
    for (const r of [grant, genesis, early]) b.apply(r);
    assert.equal(snapshot(b.ydoc), snapshot(a.ydoc));
    assert.ok(b.canWrite(writer.id));
    assert.deepEqual(b.meta?.writers, [writer.id]);
  });

  it('make updates only for writers; null for no change; roll back a failed change', () => {
    const { feed, genesis } = createDocument(owner, { type: 'list', name: 'Todo', writers: [writer.id] }, { time: T0, random });
    const replica = new DocumentReplica(feed);
    replica.apply(genesis);
    assert.throws(
      () => replica.makeUpdate(stranger, (d) => d.getMap('m').set('k', 1), { seq: 0, time: T0 }),
      (e: unknown) => e instanceof MeshError && e.code === 'DOCUMENT_NOT_WRITER',
    );
    assert.throws(
      () => replica.grantWriters(writer, [stranger.id], { seq: 0, time: T0 }),
      (e: unknown) => e instanceof MeshError && e.code === 'DOCUMENT_NOT_OWNER',
    );
    assert.throws(
      () => replica.makeUpdate(owner, (d) => d.getMap('m').set('k', 1), { seq: 0, time: T0 }),
      (e: unknown) => e instanceof MeshError && e.code === 'DOCUMENT_INVALID',
      'seq 0 of the owner is the genesis',
    );
    assert.equal(replica.makeUpdate(owner, () => {}, { seq: 1, time: T0 }), null);
    const before = snapshot(replica.ydoc);
    let resets = 0;
    replica.onReset(() => resets++);
    assert.throws(() =>
      replica.makeUpdate(owner, (d) => {
        d.getMap('m').set('half', 'done');
        throw new Error('app bug');
      }, { seq: 1, time: T0 }),
    /app bug/);
    assert.equal(snapshot(replica.ydoc), before, 'the half-made change is rolled back');
    assert.equal(resets, 1);
    const record = replica.makeUpdate(owner, (d) => d.getMap('m').set('k', 'v'), { seq: 1, time: T0 + 1 })!;
    assert.equal(record.kind, RecordKind.DocumentUpdate);
    assert.equal(replica.nextSeq(owner.id), 2);
    const other = new DocumentReplica(feed);
    for (const r of [record, genesis]) other.apply(r);
    assert.equal(snapshot(other.ydoc), snapshot(replica.ydoc));
    assert.deepEqual(other.ydoc.getMap('m').toJSON(), { k: 'v' });
  });

  it('ignore malformed and misplaced records with a code, without throwing or changing state', () => {
    const { feed, genesis } = createDocument(owner, { type: 'list', name: 'Todo', writers: 'anyone' }, { time: T0, random });
    const replica = new DocumentReplica(feed);
    replica.apply(genesis);
    replica.apply(replica.makeUpdate(owner, (d) => d.getArray('a').push(['x']), { seq: 1, time: T0 })!);
    const before = snapshot(replica.ydoc);
    const rnd = seededRandom(SEED + 100);
    for (let i = 0; i < 300; i++) {
      const kind = [RecordKind.DocumentGenesis, RecordKind.DocumentAcl, RecordKind.DocumentUpdate][i % 3]!;
      const payload = rnd(int(rnd, 60));
      const result = replica.apply(createRecord({ kind, feed, seq: kind === RecordKind.DocumentGenesis ? 0 : 10 + i, time: T0, payload }, writer));
      // Random bytes can, rarely, be a valid empty Yjs update by a writer: that may apply.
      if (result.status === 'applied') assert.equal(kind, RecordKind.DocumentUpdate);
      else assert.ok(result.status === 'ignored' && result.reason instanceof MeshError && result.reason.code.startsWith('DOCUMENT_'));
    }
    for (let n = 0; n < genesis.payload.length; n++) {
      const truncated = createRecord({ kind: RecordKind.DocumentGenesis, feed, seq: 0, time: T0, payload: genesis.payload.subarray(0, n) }, owner);
      const result = replica.apply(truncated);
      assert.equal(result.status, 'ignored');
      assert.match(result.reason!.code, /^DOCUMENT_(TRUNCATED|MALFORMED)$/);
    }
    const source = new DocumentReplica(feed);
    source.apply(genesis);
    const ownersUpdate = source.makeUpdate(owner, (d) => d.getMap('m').set('z', 1), { seq: 1, time: T0 })!;
    const foreign = createRecord({ kind: RecordKind.DocumentUpdate, feed, seq: 99, time: T0, payload: ownersUpdate.payload }, writer);
    assertReason(replica.apply(foreign), 'ignored', 'DOCUMENT_FOREIGN_CLIENT');
    const elsewhere = createRecord({ kind: RecordKind.DocumentUpdate, feed: new Uint8Array(8), seq: 5, time: T0, payload: new Uint8Array(2) }, writer);
    assertReason(replica.apply(elsewhere), 'ignored', 'DOCUMENT_WRONG_FEED');
    const mail = createRecord({ kind: RecordKind.Mail, feed, seq: 6, time: T0, payload: new Uint8Array(2) }, writer);
    assertReason(replica.apply(mail), 'ignored', 'DOCUMENT_WRONG_KIND');
    const sealed = createRecord({ kind: RecordKind.DocumentUpdate, feed, seq: 7, time: T0, sealed: true, payload: new Uint8Array(2) }, writer);
    assertReason(replica.apply(sealed), 'ignored', 'DOCUMENT_SEALED');
    assert.equal(snapshot(replica.ydoc), before);
    replica.rebuild();
    assert.equal(snapshot(replica.ydoc), before);
  });

  it('never throw on mutated updates from a writer (fast-check)', () => {
    const { feed, genesis } = createDocument(owner, { type: 'list', name: 'Fuzz', writers: 'anyone' }, { time: T0, random });
    const source = new DocumentReplica(feed);
    source.apply(genesis);
    const updates = [1, 2, 3].map((seq) =>
      source.makeUpdate(owner, (d) => {
        d.getArray('a').insert(0, [seq, { n: seq }]);
        d.getText('t').insert(0, `line ${seq}\n`);
        d.getMap('m').set(`k${seq}`, new Uint8Array([seq]));
      }, { seq, time: T0 })!.payload,
    );
    let seq = 10;
    fc.assert(
      fc.property(fc.constantFrom(...updates), fc.nat(), fc.nat({ max: 255 }), (update, at, value) => {
        const replica = new DocumentReplica(feed);
        replica.apply(genesis);
        const mutated = update.slice();
        mutated[at % mutated.length] = value;
        const result = replica.apply(createRecord({ kind: RecordKind.DocumentUpdate, feed, seq: seq++, time: T0, payload: mutated }, owner));
        assert.ok(['applied', 'ignored'].includes(result.status), result.status);
        if (result.status === 'ignored') assert.match(result.reason!.code, /^DOCUMENT_/);
        const rebuilt = snapshot(replica.ydoc);
        replica.rebuild();
        assert.equal(snapshot(replica.ydoc), rebuilt);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('leave out both updates of a fork (one key, two devices), whatever the order', () => {
    const { feed, genesis } = createDocument(owner, { type: 'list', name: 'Forked', writers: [writer.id] }, { time: T0, random });
    const base = new DocumentReplica(feed);
    base.apply(genesis);
    const first = base.makeUpdate(writer, (d) => d.getText('t').insert(0, 'shared '), { seq: 0, time: T0 })!;
    const deviceA = new DocumentReplica(feed);
    const deviceB = new DocumentReplica(feed);
    for (const d of [deviceA, deviceB]) applyAll(d, [genesis, first]);
    const forkA = deviceA.makeUpdate(writer, (d) => d.getText('t').insert(7, 'A'), { seq: 1, time: T0 + 1 })!;
    const forkB = deviceB.makeUpdate(writer, (d) => d.getText('t').insert(7, 'B'), { seq: 1, time: T0 + 2 })!;
    const owners = base.makeUpdate(owner, (d) => d.getMap('m').set('owner', 'was here'), { seq: 1, time: T0 + 3 })!;
    const all = [genesis, first, forkA, forkB, owners];
    const rnd = seededRandom(SEED + 7);
    const states = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const replica = new DocumentReplica(feed);
      const results = shuffle([...all, ...all.filter(() => int(rnd, 2) === 0)], rnd).map((r) => replica.apply(r));
      // The fork shows as DOCUMENT_FORK unless both halves waited for the genesis.
      if (results.every((r) => r.reason?.code !== 'DOCUMENT_FORK')) assert.ok(results.some((r) => r.rebuilt || r.status === 'pending'));
      assert.deepEqual(replica.counts, { applied: 2, pending: 0, excluded: 2, acls: 0 });
      states.add(snapshot(replica.ydoc));
    }
    assert.equal(states.size, 1);
    const replica = new DocumentReplica(feed);
    applyAll(replica, all);
    assert.equal(replica.ydoc.getText('t').toString(), 'shared ');
    assert.throws(
      () => replica.makeUpdate(writer, (d) => d.getText('t').insert(0, '!'), { seq: 2, time: T0 }),
      (e: unknown) => e instanceof MeshError && e.code === 'DOCUMENT_AUTHOR_BEHIND',
    );
  });

  it('keep the smaller-id genesis when the owner signs two, rebuilding if needed', () => {
    const { feed, genesis } = createDocument(owner, { type: 'list', name: 'One', writers: [writer.id] }, { time: T0, random });
    const payload = decodeGenesis(genesis.payload);
    const twin = createRecord(
      { kind: RecordKind.DocumentGenesis, feed, seq: 0, time: T0 + 1, payload: encodeGenesis({ ...payload, name: 'Two', writers: [] }) },
      owner,
    );
    const update = new RawWriter(writer, feed).write((d) => d.getMap('m').set('w', 1), T0)!;
    const winner = Buffer.compare(genesis.id, twin.id) < 0 ? genesis : twin;
    const states = new Set<string>();
    for (const order of [[genesis, twin, update], [twin, genesis, update], [update, genesis, twin], [update, twin, genesis]]) {
      const replica = new DocumentReplica(feed);
      applyAll(replica, order);
      assert.deepEqual(replica.meta?.genesisId, winner.id);
      states.add(`${snapshot(replica.ydoc)} ${replica.meta?.name}`);
    }
    assert.equal(states.size, 1);
  });

  it('bound the records that wait, and free the room once they count', () => {
    const { feed, genesis } = createDocument(owner, { type: 'list', name: 'Busy', writers: 'anyone' }, { time: T0, random });
    const budget = new PendingBudget(3, 100_000);
    const replica = new DocumentReplica(feed, { budget });
    const raw = new RawWriter(writer, feed);
    const updates = [1, 2, 3, 4].map((i) => raw.write((d) => d.getArray('a').push([i]), T0)!);
    for (const u of updates.slice(0, 3)) assertReason(replica.apply(u), 'pending', 'DOCUMENT_NO_GENESIS');
    assertReason(replica.apply(updates[3]!), 'ignored', 'DOCUMENT_PENDING_FULL');
    assert.equal(budget.records, 3);
    replica.apply(genesis);
    assert.equal(budget.records, 0);
    assert.equal(budget.bytes, 0);
    assert.equal(replica.apply(updates[3]!).status, 'applied');
    assert.deepEqual(replica.ydoc.getArray('a').toJSON(), [1, 2, 3, 4]);
  });
});

describe('document convergence (seeded)', () => {
  it(`gives identical state for any order and duplication of a feed's records (${SCENARIOS} scenarios x ${PERMUTATIONS} orders)`, () => {
    console.log(`      base seed ${SEED} (FC_SEED=<seed> replays a scenario)`);
    forEachSeed(SCENARIOS, (seed) => {
      const scenario = buildScenario(seed);
      const { feed, records, genesis, grant } = scenario;
      const reference = new DocumentReplica(feed);
      applyAll(reference, records);
      const expected = snapshot(reference.ydoc);
      const content = expected.slice(expected.indexOf(' '));
      const edits = records.filter((r) => r.kind === RecordKind.DocumentUpdate && r.seq < HOSTILE_SEQ);
      const xUpdates = edits.filter((r) => equalBytes(r.author, scenario.x.id)).length;
      if (scenario.mode === 'listed') assert.ok(!content.includes('X'), `a non-writer's edit was applied: ${content}`);
      // Every writer's update counts (B's too, once granted); only X's wait, in listed mode.
      assert.deepEqual(reference.counts, {
        applied: edits.length - (scenario.mode === 'listed' ? xUpdates : 0),
        pending: scenario.mode === 'listed' ? xUpdates : 0,
        excluded: 0,
        acls: grant ? 1 : 0,
      });
      assert.equal(reference.ydoc.store.pendingStructs, null, 'writers only build on writers: nothing may wait in Yjs');
      reference.rebuild();
      assert.equal(snapshot(reference.ydoc), expected, 'a rebuild from the held records must match');

      const random = seededRandom(seed ^ 0x5eed);
      const updates = records.filter((r) => r.kind === RecordKind.DocumentUpdate);
      const orders: Record[][] = [
        [...records].reverse(),
        [...updates, ...records.filter((r) => r !== genesis && r !== grant && r.kind !== RecordKind.DocumentUpdate), ...(grant ? [grant] : []), genesis],
      ];
      while (orders.length < PERMUTATIONS) {
        const copies = records.flatMap((r) => (int(random, 4) === 0 ? [r, r, r] : int(random, 3) === 0 ? [r, r] : [r]));
        orders.push(shuffle(copies, random));
      }
      const budget = new PendingBudget(10_000, 1 << 24);
      for (const [i, order] of orders.entries()) {
        const replica = new DocumentReplica(feed, { budget });
        const statuses = order.map((r) => replica.apply(r).status);
        assert.equal(snapshot(replica.ydoc), expected, `order ${i} diverged`);
        assert.deepEqual(replica.counts, reference.counts, `order ${i}: different records count`);
        assert.ok(statuses.filter((s) => s === 'duplicate').length <= order.length - new Set(order).size);
        replica.dispose();
      }
      assert.equal(budget.records, 0);
    });
  });

  it('routes records through a Documents collection to the same state', () => {
    forEachSeed(3, (seed) => {
      const { feed, records } = buildScenario(seed);
      const reference = new DocumentReplica(feed);
      applyAll(reference, records);
      const other = buildScenario(seed + 1000);
      const documents = new Documents({ maxDocuments: 2 });
      const random = seededRandom(seed);
      for (const r of shuffle([...records, ...other.records], random)) {
        const result = documents.apply(r);
        assert.ok(result.status !== 'ignored' || result.reason instanceof MeshError);
      }
      assert.equal(documents.size, 2);
      assert.equal(snapshot(documents.get(feed)!.ydoc), snapshot(reference.ydoc));
      assert.equal(snapshot(documents.get(toHex(other.feed))!.ydoc), snapshot((() => {
        const r = new DocumentReplica(other.feed);
        applyAll(r, other.records);
        return r.ydoc;
      })()));
      const stray = createRecord({ kind: RecordKind.DocumentUpdate, feed: new Uint8Array(8).fill(7), seq: 0, time: T0, payload: new Uint8Array([0, 0]) }, Identity.generate(random));
      assertReason(documents.apply(stray), 'ignored', 'DOCUMENT_LIMIT');
      assert.ok(documents.forget(feed));
      const garbage = createRecord({ kind: RecordKind.DocumentUpdate, feed: stray.feed, seq: 1, time: T0, payload: new Uint8Array([9]) }, Identity.generate(random));
      const result = documents.apply(garbage);
      assert.equal(result.status, 'ignored');
      assert.equal(result.replica, null);
      assert.equal(documents.size, 1, 'a replica left holding nothing is dropped');
      const mail = createRecord({ kind: RecordKind.Mail, feed, seq: 0, time: T0, payload: new Uint8Array(1) }, Identity.generate(random));
      assertReason(documents.apply(mail), 'ignored', 'DOCUMENT_WRONG_KIND');
    });
  });
});
