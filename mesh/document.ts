/**
 * CRDT documents whose updates travel inside signed records. A document is a Yjs doc named
 * by an 8-byte feed id; its records are a genesis (what it is, who may write; see
 * document-payload.ts), ACL grants by the owner, and Yjs updates (see document-update.ts).
 *
 * The promise: whatever subset of a feed's records a replica is given, in whatever order and
 * however often, its Y.Doc ends in the same state — the state of the records that count:
 *
 * - the genesis: the valid one (seq 0, feed id matching author and nonce) with the smallest
 *   record id, should the owner ever sign two;
 * - the owner's ACL records; writers = owner + genesis writers + every grant ('anyone' aside);
 * - every update by a writer, except updates whose Yjs clock ranges overlap another update's
 *   (a fork: the same key wrote twice from the same point), which are all left out.
 *
 * Updates that cannot count yet (no genesis, or the author has no grant yet) wait in memory,
 * bounded by a PendingBudget (shared by all replicas of a `Documents`); once it is spent,
 * further waiting records are refused with DOCUMENT_PENDING_FULL — the caller's store keeps
 * them and may offer them again later. Whether a record counts never depends on arrival
 * order: grants only add writers, so an update applied once stays applied. Revocation is
 * deliberately left out: taking an update back would strand every later edit that built on
 * it (Yjs holds those back forever), so excluding someone means a new document.
 *
 * The rare changes that do shrink the set (a smaller-id genesis fork, a newly seen Yjs fork,
 * an update Yjs fails to integrate) rebuild the Y.Doc from the held records: `ydoc` is then
 * a new object, reported by `rebuilt` and by `onReset` listeners.
 */
import * as Y from 'yjs';
import { compareBytes, equalBytes, toHex } from './bytes.ts';
import { MeshError } from './errors.ts';
import type { Identity, RandomBytes } from './identity.ts';
import { createRecord, FEED_ID_LENGTH, RecordKind, type Priority, type Record } from './record.ts';
import {
  decodeAcl,
  decodeGenesis,
  deriveFeedId,
  DOCUMENT_NONCE_LENGTH,
  encodeAcl,
  encodeGenesis,
  type GenesisPayload,
  type WritePolicy,
} from './document-payload.ts';
import { clientIdFor, inspectUpdate, READER_CLIENT_ID, SpanIndex, type UpdateSpan } from './document-update.ts';

/** What a new document is. */
export interface DocumentInit {
  type: string;
  name: string;
  writers: WritePolicy;
}

/** Envelope fields of a record the replica signs for a local author. */
export interface RecordStamp {
  /** The author's next sequence number in this feed (see `nextSeq`). */
  seq: number;
  /** Unix seconds. */
  time: number;
  ttl?: number;
  priority?: Priority;
}

/** Create a document: a fresh nonce, its feed id, and the signed genesis (seq 0). */
export function createDocument(
  author: Identity,
  init: DocumentInit,
  options: { time: number; random: RandomBytes; ttl?: number; priority?: Priority },
): { feed: Uint8Array; genesis: Record } {
  const nonce = options.random(DOCUMENT_NONCE_LENGTH);
  const feed = deriveFeedId(author.id, nonce);
  const payload = encodeGenesis({ type: init.type, name: init.name, nonce, writers: init.writers });
  const genesis = createRecord(
    { kind: RecordKind.DocumentGenesis, feed, seq: 0, time: options.time, ttl: options.ttl, priority: options.priority, payload },
    author,
  );
  return { feed, genesis };
}

/** What a replica knows about its document once the genesis is in. */
export interface DocumentMeta {
  readonly feed: Uint8Array;
  readonly type: string;
  readonly name: string;
  /** Key id of the creator, the only one who may grant. */
  readonly owner: Uint8Array;
  /** 'anyone', or who may write besides the owner: genesis writers and grants, ascending. */
  readonly writers: 'anyone' | readonly Uint8Array[];
  /** Unix seconds of the genesis. */
  readonly created: number;
  readonly genesisId: Uint8Array;
}

export type ApplyStatus = 'applied' | 'pending' | 'ignored' | 'duplicate';

/** What became of one record given to `apply`. */
export interface ApplyOutcome {
  /**
   * applied: it counts now. pending: held until the genesis or a grant arrives. ignored: it
   * never counts (or could not be held). duplicate: this record was given before.
   */
  readonly status: ApplyStatus;
  /** Why the record waits or was refused (DOCUMENT_* code); absent when applied or a duplicate. */
  readonly reason?: MeshError;
  /** The replica replaced `ydoc` with a rebuilt one: observers must re-attach. */
  readonly rebuilt: boolean;
}

/** Room for records that wait: at most `maxRecords` records and `maxBytes` bytes. */
export class PendingBudget {
  #records = 0;
  #bytes = 0;

  constructor(
    readonly maxRecords = 1024,
    readonly maxBytes = 1024 * 1024,
  ) {
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 0 || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new MeshError('DOCUMENT_INVALID', 'pending limits must be non-negative integers');
    }
  }

  get records(): number {
    return this.#records;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Take room for one record of `bytes`; false when it does not fit (unless forced). */
  take(bytes: number, force = false): boolean {
    if (!force && (this.#records + 1 > this.maxRecords || this.#bytes + bytes > this.maxBytes)) return false;
    this.#records++;
    this.#bytes += bytes;
    return true;
  }

  /** Give back room for `records` records totalling `bytes`. */
  give(records: number, bytes: number): void {
    this.#records -= records;
    this.#bytes -= bytes;
  }
}

export interface ReplicaOptions {
  /** Shared room for waiting records; by default one of 1024 records / 1 MiB for this replica. */
  budget?: PendingBudget;
}

interface UpdateEntry {
  readonly record: Record;
  readonly key: string;
  readonly span: UpdateSpan | null;
  state: 'pending' | 'applied' | 'excluded';
}

interface AclEntry {
  readonly record: Record;
  readonly key: string;
  readonly grant: readonly Uint8Array[];
}

type Admission = 'applied' | 'excluded' | 'excluded-applied-before' | 'failed';

const DUPLICATE: ApplyOutcome = Object.freeze({ status: 'duplicate', rebuilt: false });
const REMOTE = Symbol('document-replica');

function outcome(status: ApplyStatus, code?: string, message?: string, rebuilt = false): ApplyOutcome {
  return code ? { status, reason: new MeshError(code, message ?? code), rebuilt } : { status, rebuilt };
}

/** Refuse a record for a MeshError thrown by a decoder; anything else is a bug and rethrown. */
function refuse(err: unknown): ApplyOutcome {
  if (err instanceof MeshError) return { status: 'ignored', reason: err, rebuilt: false };
  throw err;
}

function newDoc(): Y.Doc {
  const doc = new Y.Doc();
  doc.clientID = READER_CLIENT_ID;
  return doc;
}

/**
 * One document materialised from its records. Give it records with `apply` (already
 * signature-checked by the caller); read `ydoc` and `meta`; write with `makeUpdate`. Mutate
 * the Y.Doc only through `makeUpdate`: a change made directly never reaches a record.
 */
export class DocumentReplica {
  readonly feed: Uint8Array;
  #doc = newDoc();
  #genesis: { record: Record; key: string; payload: GenesisPayload } | null = null;
  #listed = new Map<string, Uint8Array>();
  #grants = new Map<string, Uint8Array>();
  #acls = new Map<string, AclEntry>();
  #updates = new Map<string, UpdateEntry>();
  readonly #spans = new SpanIndex<UpdateEntry>();
  #lastSeq = new Map<string, number>();
  #pendingRecords = 0;
  #pendingBytes = 0;
  readonly #budget: PendingBudget;
  readonly #resetListeners = new Set<(doc: Y.Doc) => void>();

  constructor(feed: Uint8Array, options: ReplicaOptions = {}) {
    if (!(feed instanceof Uint8Array) || feed.length !== FEED_ID_LENGTH) {
      throw new MeshError('DOCUMENT_INVALID', `feed id must be ${FEED_ID_LENGTH} bytes`);
    }
    this.feed = Uint8Array.from(feed);
    this.#budget = options.budget ?? new PendingBudget();
  }

  /** The materialised state. Replaced by a new Y.Doc when the replica rebuilds. */
  get ydoc(): Y.Doc {
    return this.#doc;
  }

  /** Type, name, owner and writers, or null until the genesis arrives. */
  get meta(): DocumentMeta | null {
    const g = this.#genesis;
    if (!g) return null;
    const writers =
      g.payload.writers === 'anyone'
        ? 'anyone'
        : [...new Map([...this.#listed, ...this.#grants]).values()].sort(compareBytes);
    return {
      feed: this.feed,
      type: g.payload.type,
      name: g.payload.name,
      owner: g.record.author,
      writers,
      created: g.record.time,
      genesisId: g.record.id,
    };
  }

  /** Records held, by state: updates applied, waiting or left out as forks, and ACL records. */
  get counts(): { applied: number; pending: number; excluded: number; acls: number } {
    const counts = { applied: 0, pending: 0, excluded: 0, acls: this.#acls.size };
    for (const e of this.#updates.values()) counts[e.state]++;
    return counts;
  }

  /** Nothing held: no genesis, no waiting or applied records. */
  get isEmpty(): boolean {
    return this.#genesis === null && this.#acls.size === 0 && this.#updates.size === 0;
  }

  /** Whether updates by this key id count (false until the genesis is known). */
  canWrite(author: Uint8Array): boolean {
    const g = this.#genesis;
    if (!g) return false;
    if (equalBytes(author, g.record.author) || g.payload.writers === 'anyone') return true;
    const key = toHex(author);
    return this.#listed.has(key) || this.#grants.has(key);
  }

  /** One past the highest seq this replica holds from `author` in this feed (0 if none). */
  nextSeq(author: Uint8Array): number {
    const last = this.#lastSeq.get(toHex(author));
    return last === undefined ? 0 : last + 1;
  }

  /** Call `listener` with the new Y.Doc whenever the replica rebuilds. Returns an unsubscribe. */
  onReset(listener: (doc: Y.Doc) => void): () => void {
    this.#resetListeners.add(listener);
    return () => this.#resetListeners.delete(listener);
  }

  /**
   * Take in one record of this feed. Never throws for bad remote input: malformed or
   * misplaced records come back `ignored` with a MeshError `reason` (DOCUMENT_WRONG_FEED,
   * DOCUMENT_WRONG_KIND, DOCUMENT_SEALED, DOCUMENT_GENESIS_SEQ, DOCUMENT_FEED_MISMATCH,
   * DOCUMENT_GENESIS_FORK, DOCUMENT_NOT_OWNER, DOCUMENT_FORK, DOCUMENT_PENDING_FULL, the
   * decoders' DOCUMENT_TRUNCATED / _VERSION / _MALFORMED / _BAD_UPDATE / _FOREIGN_CLIENT /
   * _UNSUPPORTED); waiting ones come back `pending` (DOCUMENT_NO_GENESIS, DOCUMENT_NOT_WRITER).
   */
  apply(record: Record): ApplyOutcome {
    if (!equalBytes(record.feed, this.feed)) return outcome('ignored', 'DOCUMENT_WRONG_FEED', 'record belongs to another feed');
    if (record.sealed) return outcome('ignored', 'DOCUMENT_SEALED', 'sealed document records must be opened first');
    switch (record.kind) {
      case RecordKind.DocumentGenesis:
        return this.#applyGenesis(record);
      case RecordKind.DocumentAcl:
        return this.#applyAcl(record);
      case RecordKind.DocumentUpdate:
        return this.#applyUpdate(record);
      default:
        return outcome('ignored', 'DOCUMENT_WRONG_KIND', `record kind ${record.kind} is not a document record`);
    }
  }

  /**
   * Apply a local change by `author` and return the signed record carrying it, or null when
   * `mutate` changed nothing. Throws MeshError: DOCUMENT_NOT_WRITER, DOCUMENT_INVALID (a seq
   * already used), DOCUMENT_AUTHOR_BEHIND (this replica lacks some of the author's own
   * updates, so new ones would reuse their Yjs clocks), and RECORD_* from createRecord. If
   * `mutate` or signing throws, the change is rolled back (by a rebuild) and the error rethrown.
   */
  makeUpdate(author: Identity, mutate: (doc: Y.Doc) => void, stamp: RecordStamp): Record | null {
    if (!this.canWrite(author.id)) throw new MeshError('DOCUMENT_NOT_WRITER', 'this author may not write this document');
    this.#checkSeq(author.id, stamp.seq);
    const client = clientIdFor(author.id);
    if (Y.getState(this.#doc.store, client) < this.#spans.end(client)) {
      throw new MeshError('DOCUMENT_AUTHOR_BEHIND', "this replica lacks some of the author's own updates");
    }
    const doc = this.#doc;
    const origin = Symbol('local-change');
    const captured: { update?: Uint8Array } = {};
    const listener = (u: Uint8Array, o: unknown) => {
      if (o === origin) captured.update = u;
    };
    doc.on('update', listener);
    doc.clientID = client;
    try {
      doc.transact(() => mutate(doc), origin);
    } catch (err) {
      if (captured.update) this.rebuild();
      throw err;
    } finally {
      doc.clientID = READER_CLIENT_ID;
      doc.off('update', listener);
    }
    const update = captured.update;
    if (!update) return null;
    let record: Record;
    let span: UpdateSpan | null;
    try {
      record = createRecord({ kind: RecordKind.DocumentUpdate, feed: this.feed, ...stamp, payload: update }, author);
      span = inspectUpdate(update, author.id);
    } catch (err) {
      this.rebuild();
      throw err;
    }
    const entry: UpdateEntry = { record, key: toHex(record.id), span, state: 'applied' };
    this.#updates.set(entry.key, entry);
    this.#spans.add(entry);
    this.#noteSeq(record);
    return record;
  }

  /** As the owner, sign and apply an ACL record granting write access. Throws DOCUMENT_NOT_OWNER. */
  grantWriters(owner: Identity, writers: readonly Uint8Array[], stamp: RecordStamp): Record {
    const g = this.#genesis;
    if (!g || !equalBytes(owner.id, g.record.author)) throw new MeshError('DOCUMENT_NOT_OWNER', 'only the owner may grant');
    this.#checkSeq(owner.id, stamp.seq);
    const payload = encodeAcl({ grant: writers });
    const record = createRecord({ kind: RecordKind.DocumentAcl, feed: this.feed, ...stamp, payload }, owner);
    this.apply(record);
    return record;
  }

  /** Materialise `ydoc` afresh from the held records (as a restart would) and tell listeners. */
  rebuild(): void {
    while (!this.#materialise()) {
      // An update Yjs could not integrate was dropped: start again without it.
    }
    for (const listener of this.#resetListeners) listener(this.#doc);
  }

  /** Forget everything and give back the pending budget. */
  dispose(): void {
    this.#budget.give(this.#pendingRecords, this.#pendingBytes);
    this.#pendingRecords = 0;
    this.#pendingBytes = 0;
    this.#acls.clear();
    this.#updates.clear();
    this.#spans.clear();
    this.#genesis = null;
    this.#doc = newDoc();
    this.#resetListeners.clear();
  }

  #checkSeq(author: Uint8Array, seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new MeshError('DOCUMENT_INVALID', `seq must be a non-negative integer, got ${seq}`);
    if (seq < this.nextSeq(author)) {
      throw new MeshError('DOCUMENT_INVALID', `seq ${seq} is already used by this author in this feed`);
    }
  }

  #noteSeq(record: Record): void {
    const key = toHex(record.author);
    this.#lastSeq.set(key, Math.max(this.#lastSeq.get(key) ?? 0, record.seq));
  }

  /** Count a waiting record against the budget; `force` keeps records already held across a rebuild. */
  #hold(record: Record, force = false): boolean {
    if (!this.#budget.take(record.bytes.length, force)) return false;
    this.#pendingRecords++;
    this.#pendingBytes += record.bytes.length;
    return true;
  }

  #unhold(record: Record): void {
    this.#budget.give(1, record.bytes.length);
    this.#pendingRecords--;
    this.#pendingBytes -= record.bytes.length;
  }

  #setGenesis(record: Record, payload: GenesisPayload): void {
    this.#genesis = { record, key: toHex(record.id), payload };
    this.#listed = new Map(payload.writers === 'anyone' ? [] : payload.writers.map((id) => [toHex(id), id]));
  }

  #applyGenesis(record: Record): ApplyOutcome {
    if (this.#genesis && equalBytes(this.#genesis.record.id, record.id)) return DUPLICATE;
    if (record.seq !== 0) return outcome('ignored', 'DOCUMENT_GENESIS_SEQ', 'a genesis must be seq 0 of its feed');
    let payload: GenesisPayload;
    try {
      payload = decodeGenesis(record.payload);
    } catch (err) {
      return refuse(err);
    }
    if (!equalBytes(deriveFeedId(record.author, payload.nonce), this.feed)) {
      return outcome('ignored', 'DOCUMENT_FEED_MISMATCH', 'genesis author and nonce do not give this feed id');
    }
    const previous = this.#genesis;
    if (previous && compareBytes(record.id, previous.record.id) > 0) {
      return outcome('ignored', 'DOCUMENT_GENESIS_FORK', 'another genesis of this document has the smaller record id');
    }
    this.#setGenesis(record, payload);
    this.#noteSeq(record);
    if (previous) {
      this.rebuild();
      return outcome('applied', undefined, undefined, true);
    }
    for (const acl of this.#acls.values()) {
      this.#unhold(acl.record);
      if (!equalBytes(acl.record.author, record.author)) this.#acls.delete(acl.key);
      else for (const id of acl.grant) this.#grants.set(toHex(id), id);
    }
    return this.#promote(() => true);
  }

  #applyAcl(record: Record): ApplyOutcome {
    const key = toHex(record.id);
    if (this.#acls.has(key)) return DUPLICATE;
    let grant: readonly Uint8Array[];
    try {
      grant = decodeAcl(record.payload).grant;
    } catch (err) {
      return refuse(err);
    }
    const g = this.#genesis;
    if (g && !equalBytes(record.author, g.record.author)) {
      return outcome('ignored', 'DOCUMENT_NOT_OWNER', 'only the owner may change who writes');
    }
    if (!g && !this.#hold(record)) return outcome('ignored', 'DOCUMENT_PENDING_FULL', 'too many records are waiting');
    this.#acls.set(key, { record, key, grant });
    this.#noteSeq(record);
    if (!g) return outcome('pending', 'DOCUMENT_NO_GENESIS', 'waiting for the genesis to learn the owner');
    const fresh = new Set<string>();
    for (const id of grant) {
      if (!this.canWrite(id)) fresh.add(toHex(id));
      this.#grants.set(toHex(id), id);
    }
    return fresh.size === 0 ? outcome('applied') : this.#promote((e) => fresh.has(toHex(e.record.author)));
  }

  #applyUpdate(record: Record): ApplyOutcome {
    const key = toHex(record.id);
    if (this.#updates.has(key)) return DUPLICATE;
    let span: UpdateSpan | null;
    try {
      span = inspectUpdate(record.payload, record.author);
    } catch (err) {
      return refuse(err);
    }
    const entry: UpdateEntry = { record, key, span, state: 'pending' };
    if (!this.canWrite(record.author)) {
      if (!this.#hold(record)) return outcome('ignored', 'DOCUMENT_PENDING_FULL', 'too many records are waiting');
      this.#updates.set(key, entry);
      this.#noteSeq(record);
      return this.#genesis
        ? outcome('pending', 'DOCUMENT_NOT_WRITER', 'the author may not write (yet): waiting for a grant')
        : outcome('pending', 'DOCUMENT_NO_GENESIS', 'waiting for the genesis to learn who may write');
    }
    this.#updates.set(key, entry);
    this.#noteSeq(record);
    const admission = this.#admit(entry);
    if (admission === 'applied') return outcome('applied');
    const rebuilt = admission !== 'excluded';
    if (rebuilt) this.rebuild();
    return admission === 'failed'
      ? outcome('ignored', 'DOCUMENT_BAD_UPDATE', 'Yjs could not integrate the update', rebuilt)
      : outcome('ignored', 'DOCUMENT_FORK', "the update reuses Yjs clocks of another of its author's updates", rebuilt);
  }

  /** Admit the waiting updates that `which` selects and whose authors may now write. */
  #promote(which: (entry: UpdateEntry) => boolean): ApplyOutcome {
    let rebuild = false;
    for (const entry of [...this.#updates.values()]) {
      if (entry.state !== 'pending' || !which(entry) || !this.canWrite(entry.record.author)) continue;
      this.#unhold(entry.record);
      const admission = this.#admit(entry);
      if (admission === 'failed' || admission === 'excluded-applied-before') rebuild = true;
    }
    if (rebuild) this.rebuild();
    return outcome('applied', undefined, undefined, rebuild);
  }

  /**
   * Make a writer's update count: apply it, unless its clocks overlap another counted
   * update's, in which case both are left out (and a rebuild is needed if the other one was
   * applied). 'failed': Yjs threw while integrating; the update is dropped, rebuild needed.
   */
  #admit(entry: UpdateEntry): Admission {
    if (entry.span) {
      const overlaps = this.#spans.overlapping(entry.span, entry);
      this.#spans.add(entry);
      if (overlaps.length > 0) {
        entry.state = 'excluded';
        let appliedBefore = false;
        for (const other of overlaps) {
          if (other.state === 'applied') appliedBefore = true;
          other.state = 'excluded';
        }
        return appliedBefore ? 'excluded-applied-before' : 'excluded';
      }
    }
    return this.#integrate(entry) ? 'applied' : 'failed';
  }

  #integrate(entry: UpdateEntry): boolean {
    try {
      Y.applyUpdate(this.#doc, entry.record.payload, REMOTE);
      entry.state = 'applied';
      return true;
    } catch {
      // Decodable but not integrable (crafted struct references): drop it for good.
      this.#updates.delete(entry.key);
      return false;
    }
  }

  /** Recompute everything from the held records. False if an update failed and was dropped. */
  #materialise(): boolean {
    this.#budget.give(this.#pendingRecords, this.#pendingBytes);
    this.#pendingRecords = 0;
    this.#pendingBytes = 0;
    this.#grants.clear();
    this.#spans.clear();
    this.#doc = newDoc();
    const g = this.#genesis;
    for (const acl of this.#acls.values()) {
      if (!g) this.#hold(acl.record, true);
      else if (!equalBytes(acl.record.author, g.record.author)) this.#acls.delete(acl.key);
      else for (const id of acl.grant) this.#grants.set(toHex(id), id);
    }
    const eligible: UpdateEntry[] = [];
    for (const entry of this.#updates.values()) {
      entry.state = 'pending';
      if (this.canWrite(entry.record.author)) {
        eligible.push(entry);
        this.#spans.add(entry);
      } else {
        this.#hold(entry.record, true);
      }
    }
    for (const entry of eligible) {
      if (entry.span && this.#spans.overlapping(entry.span, entry).length > 0) entry.state = 'excluded';
    }
    for (const entry of eligible) {
      if (entry.state === 'pending' && !this.#integrate(entry)) return false;
    }
    return true;
  }
}
