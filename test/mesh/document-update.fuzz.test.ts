/**
 * Yjs updates inside validly signed DocumentUpdate records, against hostile writers
 * (fast-check; the seed is printed and FC_SEED=<seed> replays it).
 *
 *  - inspectUpdate on random bytes, every truncation and every one-bit flip of real updates:
 *    a span, null, or a MeshError DOCUMENT_*; never another error.
 *  - Crafted updates, written struct by struct, whose items name arbitrary origins, right
 *    origins and parents (the owner's clocks, the writer's own, the other writer's, a
 *    stranger's) and delete sets, from two writers the document lets write, mixed in any
 *    order with the owner's honest updates: the replica never throws, every honest update counts (its clocks are in the state vector), the
 *    document still reads and encodes, a rebuild gives the same state, and two replicas that
 *    got the same records in different orders agree.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as Y from 'yjs';
import { toHex, utf8 } from '../../mesh/bytes.ts';
import { createDocument, DocumentReplica, type ApplyOutcome } from '../../mesh/document.ts';
import { clientIdFor, inspectUpdate } from '../../mesh/document-update.ts';
import { MeshError } from '../../mesh/errors.ts';
import { Identity } from '../../mesh/identity.ts';
import { createRecord, RecordKind, type Record } from '../../mesh/record.ts';
import { seededRandom, shuffle } from '../helpers/random.ts';
import { oneBitFlips } from '../helpers/byte-edits.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const T0 = 1_790_000_000;
const random = seededRandom(seed);
const owner = Identity.generate(random);
const writer = Identity.generate(random);
const OWNER = clientIdFor(owner.id);
const WRITER = clientIdFor(writer.id);
/** A second hostile writer, so crafted items of two writers can refer to each other. */
const other = Identity.generate(random);
const OTHER = clientIdFor(other.id);
const STRANGER = 4242;

/** lib0's unsigned varint (7 bits a byte, little end first), for numbers up to 2^53. */
function varUint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

function varString(out: number[], text: string): void {
  const bytes = utf8(text);
  varUint(out, bytes.length);
  out.push(...bytes);
}

type Ref = [client: number, clock: number];
interface CraftedItem {
  origin: Ref | null;
  rightOrigin: Ref | null;
  /** Used when neither origin is given: a root type's name, or an item that should be a type. */
  parent: string | Ref;
  parentSub: string | null;
  content: 'string' | 'any' | 'deleted' | 'array' | 'map' | 'text' | 'format' | 'embed' | 'json' | 'gc';
}

/**
 * A Yjs v1 update with `items` as consecutive structs of `client` from `firstClock`, and
 * `deletes` as its delete set. Layout: clients, then per client structs count, client, first clock;
 * per item an info byte (content ref | 0x80 origin | 0x40 right origin | 0x20 parent sub);
 * then the delete set: clients, and per client its id, ranges count, (clock, length) pairs.
 */
function craftUpdate(client: number, items: CraftedItem[], firstClock = 0, deletes: Array<[client: number, clock: number, length: number]> = []): Uint8Array {
  const out: number[] = [];
  varUint(out, 1);
  varUint(out, items.length);
  varUint(out, client);
  varUint(out, firstClock);
  for (const item of items) {
    if (item.content === 'gc') {
      out.push(0); // a GC struct: no origins, no parent, a length
      varUint(out, 1);
      continue;
    }
    const ref = { deleted: 1, json: 2, embed: 5, format: 6, string: 4, array: 7, map: 7, text: 7, any: 8 }[item.content];
    const withParent = !item.origin && !item.rightOrigin;
    out.push(ref | (item.origin ? 0x80 : 0) | (item.rightOrigin ? 0x40 : 0) | (withParent && item.parentSub !== null ? 0x20 : 0));
    for (const id of [item.origin, item.rightOrigin]) {
      if (id) {
        varUint(out, id[0]);
        varUint(out, id[1]);
      }
    }
    if (withParent) {
      if (typeof item.parent === 'string') {
        varUint(out, 1);
        varString(out, item.parent);
      } else {
        varUint(out, 0);
        varUint(out, item.parent[0]);
        varUint(out, item.parent[1]);
      }
      if (item.parentSub !== null) varString(out, item.parentSub);
    }
    switch (item.content) {
      case 'deleted':
        varUint(out, 1);
        break;
      case 'string':
        varString(out, 'x');
        break;
      case 'any':
        varUint(out, 1);
        out.push(125, 2); // one integer, 1
        break;
      case 'json':
        varUint(out, 1);
        varString(out, '{"a":1}');
        break;
      case 'embed':
        varString(out, '{"image":"x"}');
        break;
      case 'format':
        varString(out, 'bold');
        varString(out, 'true');
        break;
      default:
        varUint(out, { array: 0, map: 1, text: 2 }[item.content]);
    }
  }
  // Delete set: per client, its ranges (clock, length).
  const byClient = new Map<number, Array<[number, number]>>();
  for (const [c, clock, length] of deletes) byClient.set(c, [...(byClient.get(c) ?? []), [clock, length]]);
  varUint(out, byClient.size);
  for (const [c, ranges] of byClient) {
    varUint(out, c);
    varUint(out, ranges.length);
    for (const [clock, length] of ranges) {
      varUint(out, clock);
      varUint(out, length);
    }
  }
  return Uint8Array.from(out);
}

const ref: fc.Arbitrary<Ref> = fc.tuple(fc.constantFrom(OWNER, WRITER, OTHER, STRANGER), fc.nat({ max: 12 }));
const craftedItem: fc.Arbitrary<CraftedItem> = fc.record({
  origin: fc.option(ref, { freq: 2 }),
  rightOrigin: fc.option(ref, { freq: 2 }),
  parent: fc.oneof(fc.constantFrom('t', 'a', 'm'), ref),
  parentSub: fc.option(fc.constantFrom('k', 'n')),
  content: fc.constantFrom('string', 'any', 'deleted', 'array', 'map', 'text', 'format', 'embed', 'json', 'gc'),
});

/** Deletions of any client's clocks, of 1 to 2^52 clocks. */
const deletion: fc.Arbitrary<[number, number, number]> = fc.tuple(
  fc.constantFrom(OWNER, WRITER, OTHER, STRANGER),
  fc.oneof(fc.nat({ max: 12 }), fc.constant(2 ** 40)),
  fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(2 ** 52)),
);

/** A fresh document of `writers: 'anyone'` and three honest updates of its owner. */
function ownerDocument() {
  const { feed, genesis } = createDocument(owner, { type: 'list', name: 'Fuzz', writers: 'anyone' }, { time: T0, random });
  const source = new DocumentReplica(feed);
  source.apply(genesis);
  const honest: Record[] = [
    source.makeUpdate(owner, (d) => d.getText('t').insert(0, 'ab'), { seq: 1, time: T0 })!,
    source.makeUpdate(owner, (d) => d.getArray('a').insert(0, [1, new Y.Map()]), { seq: 2, time: T0 })!,
    source.makeUpdate(owner, (d) => d.getMap('m').set('k', new Y.Text('qr')), { seq: 3, time: T0 })!,
  ];
  return { feed, genesis, honest, ownerClock: Y.getState(source.ydoc.store, OWNER) };
}

/** Everything that must agree between replicas: state vector and the content of each root. */
function snapshot(doc: Y.Doc): string {
  return `${toHex(Y.encodeStateVector(doc))} ${JSON.stringify([doc.getText('t').toString(), doc.getArray('a').toJSON(), Object.entries(doc.getMap('m').toJSON()).sort()])}`;
}

function checkOutcome(outcome: ApplyOutcome, what: string): void {
  assert.ok(['applied', 'ignored', 'pending'].includes(outcome.status), `${what}: ${outcome.status}`);
  if (outcome.status !== 'applied') assert.match(outcome.reason!.code, /^DOCUMENT_/, what);
}

describe('mesh/document-update (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('inspectUpdate: random bytes, every truncation and every bit flip of real updates give a span, null or DOCUMENT_*', () => {
    const judge = (bytes: Uint8Array, author: Uint8Array) => {
      try {
        const span = inspectUpdate(bytes, author);
        if (span) assert.ok(span.from < span.to && Number.isSafeInteger(span.to));
      } catch (err) {
        assert.ok(err instanceof MeshError, `threw ${String(err)}`);
        assert.match(err.code, /^DOCUMENT_(BAD_UPDATE|FOREIGN_CLIENT|UNSUPPORTED)$/);
      }
    };
    const { honest } = ownerDocument();
    let cases = 0;
    for (const record of honest) {
      const update = record.payload;
      for (let n = 0; n <= update.length; n++, cases++) judge(update.subarray(0, n), owner.id);
      for (const { flipped } of oneBitFlips(update)) {
        cases++;
        judge(flipped, owner.id);
      }
    }
    assert.ok(cases > 500, `${cases} cases`);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => judge(bytes, owner.id)),
      { seed, numRuns: 2000 },
    );
  });

  it('takes every honest update: random edits of two clients, in the middle of each other’s content', () => {
    const edit = fc.tuple(fc.nat({ max: 1 }), fc.constantFrom('text', 'delete', 'array', 'nested', 'map', 'format'), fc.nat(), fc.string({ maxLength: 4 }));
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 30 }), (edits) => {
        const authors = [owner.id, writer.id];
        const docs = authors.map((id) => {
          const doc = new Y.Doc();
          doc.clientID = clientIdFor(id);
          return doc;
        });
        for (const [who, how, at, text] of edits) {
          const doc = docs[who]!;
          const t = doc.getText('t');
          const a = doc.getArray<unknown>('a');
          const before = Y.encodeStateVector(doc);
          doc.transact(() => {
            if (how === 'text') t.insert(at % (t.length + 1), text || 'z');
            else if (how === 'delete' && t.length > 0) t.delete(at % t.length, 1 + (at % 3));
            else if (how === 'array') a.insert(at % (a.length + 1), [text, at]);
            else if (how === 'nested') a.insert(at % (a.length + 1), [new Y.Map([['k', new Y.Text(text)]])]);
            else if (how === 'map') {
              const inner = a.toArray().find((v): v is Y.Map<unknown> => v instanceof Y.Map);
              (inner ?? doc.getMap('m')).set(text, at);
            } else if (how === 'format' && t.length > 0) t.format(0, 1 + (at % t.length), { bold: at % 2 === 0 });
          });
          const update = Y.encodeStateAsUpdate(doc, before);
          inspectUpdate(update, authors[who]!); // throws on a false refusal
          Y.applyUpdate(docs[1 - who]!, update);
        }
      }),
      { seed, numRuns: 300 },
    );
  });

  it("refuses an item that names its own later clock, which would make Yjs drop the owner's next update", () => {
    const { feed, genesis, honest, ownerClock } = ownerDocument();
    const replica = new DocumentReplica(feed);
    replica.apply(genesis);
    // Its origin waits for the owner's clock 0; then Yjs resolves its right origin, itself.
    const crafted = craftUpdate(WRITER, [{ origin: [OWNER, 0], rightOrigin: [WRITER, 0], parent: 't', parentSub: null, content: 'string' }]);
    const outcome = replica.apply(createRecord({ kind: RecordKind.DocumentUpdate, feed, seq: 1, time: T0, payload: crafted }, writer));
    assert.equal(outcome.status, 'ignored');
    assert.equal(outcome.reason?.code, 'DOCUMENT_BAD_UPDATE');
    for (const record of honest) assert.equal(replica.apply(record).status, 'applied');
    assert.equal(Y.getState(replica.ydoc.store, OWNER), ownerClock);
    assert.equal(replica.ydoc.getText('t').toString(), 'ab');
  });

  it("refuses a delete set with a client's ranges out of order, which replicas would apply differently", () => {
    const { feed, genesis, honest } = ownerDocument();
    // Deletes the owner's clocks 3 and 0, in that order: Yjs deleted only clock 3 when the
    // owner's updates came later, both when they came first.
    const crafted = craftUpdate(WRITER, [{ origin: null, rightOrigin: null, parent: 't', parentSub: null, content: 'string' }], 0, [
      [OWNER, 3, 1],
      [OWNER, 0, 1],
    ]);
    const record = createRecord({ kind: RecordKind.DocumentUpdate, feed, seq: 1, time: T0, payload: crafted }, writer);
    const states = [
      [record, ...honest],
      [...honest, record],
    ].map((order) => {
      const replica = new DocumentReplica(feed);
      replica.apply(genesis);
      const outcomes = order.map((r) => replica.apply(r));
      assert.equal(outcomes[order.indexOf(record)]!.reason?.code, 'DOCUMENT_BAD_UPDATE');
      return snapshot(replica.ydoc);
    });
    assert.equal(states[0], states[1]);
    // In order, the same deletions are taken.
    const sorted = craftUpdate(WRITER, [{ origin: null, rightOrigin: null, parent: 't', parentSub: null, content: 'string' }], 0, [
      [OWNER, 0, 1],
      [OWNER, 3, 1],
    ]);
    assert.deepEqual(inspectUpdate(sorted, writer.id), { client: WRITER, from: 0, to: 1 });
  });

  it('crafted updates of two writers, in any order with the owner’s, never throw nor cost an honest update, and converge', function () {
    this.timeout(30_000);
    const outcomes = new Map<string, number>();
    const { feed, genesis, honest, ownerClock } = ownerDocument();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.array(craftedItem, { minLength: 1, maxLength: 4 }), fc.array(deletion, { maxLength: 3 })), { minLength: 1, maxLength: 4 }), fc.nat(), (updates, order) => {
        // Updates alternate between the two writers; each writer's take clocks 0-3, 4-7: they
        // may refer to each other's and to the other writer's.
        const crafted = updates.map(([items, deletes], i) => {
          const [author, client] = i % 2 === 0 ? [writer, WRITER] : [other, OTHER];
          return createRecord({ kind: RecordKind.DocumentUpdate, feed, seq: 10 + i, time: T0, payload: craftUpdate(client, items, 4 * (i >> 1), deletes) }, author);
        });
        const replicas = [0, 1].map((k) => {
          const replica = new DocumentReplica(feed);
          replica.apply(genesis);
          for (const record of shuffle([...honest, ...crafted], seededRandom(order + k))) {
            const outcome = replica.apply(record);
            checkOutcome(outcome, `record seq ${record.seq}`);
            const key = outcome.status === 'applied' ? 'applied' : outcome.reason!.code;
            outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          }
          return replica;
        });
        for (const replica of replicas) {
          assert.equal(Y.getState(replica.ydoc.store, OWNER), ownerClock, "every one of the owner's clocks is in the document");
          assert.equal(replica.counts.applied >= honest.length, true);
          Y.encodeStateAsUpdate(replica.ydoc);
          const before = snapshot(replica.ydoc);
          replica.rebuild();
          assert.equal(snapshot(replica.ydoc), before, 'a rebuild gives the same state');
        }
        assert.equal(snapshot(replicas[0]!.ydoc), snapshot(replicas[1]!.ydoc), 'both orders give the same state');
      }),
      { seed, numRuns: 200 },
    );
    console.log(`      outcomes: ${[...outcomes].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  });
});
