/**
 * A mesh node: one household's identity, record store, directory and documents, composed
 * with no globals, so many nodes can live in one process (the simulator runs hundreds).
 * Everything with a side effect — clock, randomness, store — is passed in; `apps/daemon`
 * wires the concrete parts.
 *
 * Records enter in two ways: `publish` (written here, signed by a local identity, stored
 * durably before the promise resolves) and `ingest` (bytes from a neighbour: decoded,
 * verified, deduplicated, stored). A record whose author is not known yet waits in a bounded
 * pending set until the directory entry that names its key arrives.
 */
import { EventEmitter } from 'node:events';
import { fromHex, toHex } from './bytes.ts';
import { unixSeconds, type Clock } from './clock.ts';
import { defaultEd25519, type SignatureScheme } from './ed25519.ts';
import { MeshError } from './errors.ts';
import { Directory, DirectoryRole, directoryFeed, encodeDirectoryEntry } from './directory.ts';
import type { DocumentInit, DocumentReplica } from './document.ts';
import { Documents, type DocumentsOptions } from './documents.ts';
import type * as Y from 'yjs';
import { secureRandom, type Identity, type RandomBytes } from './identity.ts';
import { createRecord, decodeRecord, verifyRecord, Priority, RecordKind, type Record, type RecordFields } from './record.ts';
import type { RecordStore } from './record-store.ts';

/** The order document records are replayed in at start (see `start`). */
const DOCUMENT_ORDER = new Map<RecordKind, number>([
  [RecordKind.DocumentGenesis, 0],
  [RecordKind.DocumentAcl, 1],
  [RecordKind.DocumentUpdate, 2],
]);

export interface MeshNodeOptions {
  /** The household's name (SPEC §3). */
  householdName: string;
  /** Most records kept waiting for their author's key. */
  pendingLimit?: number;
  maxClockSkewS?: number;
  documents?: DocumentsOptions;
}

export interface MeshNodeDeps {
  household: Identity;
  store: RecordStore;
  clock: Clock;
  random?: RandomBytes;
  scheme?: SignatureScheme;
}

/** What became of one record offered to `ingest`. */
export interface IngestResult {
  id: string | null;
  status: 'stored' | 'duplicate' | 'fork' | 'quota' | 'expired' | 'pending' | 'rejected';
  /** The MeshError code when rejected. */
  code?: string;
}

/** A record that passed verification, with its id in hex (computed once). */
interface VerifiedRecord {
  record: Record;
  id: string;
}

/** Fields of a record to publish; seq and time are assigned by the node. */
export type PublishFields = Omit<RecordFields, 'seq' | 'time'>;

interface MeshNodeEvents {
  /**
   * A record was stored (published here or ingested), after the directory saw it. `source`
   * is what the caller of `ingest` named as the record's origin (sync passes its link);
   * undefined for records published here.
   */
  record: [record: Record, source: unknown];
}

export class MeshNode extends EventEmitter<MeshNodeEvents> {
  readonly directory = new Directory();
  /** The CRDT documents this node holds (chat rooms, blogs, lists), rebuilt from the store at start. */
  readonly documents: Documents;
  readonly household: Identity;
  readonly householdName: string;
  readonly store: RecordStore;
  readonly random: RandomBytes;
  private readonly clock: Clock;
  private readonly scheme: SignatureScheme;
  private readonly pending = new Map<string, Record>();
  private readonly pendingLimit: number;
  private readonly maxClockSkewS: number | undefined;
  private publishQueue: Promise<unknown> = Promise.resolve();
  private started = false;
  /** The household's key id in hex (trustOf is asked for every record sync queues). */
  private readonly householdHex: string;
  /** Counts of rejected records by reason code, for /metrics. */
  readonly rejected = new Map<string, number>();

  constructor(options: MeshNodeOptions, deps: MeshNodeDeps) {
    super();
    this.householdName = options.householdName;
    this.pendingLimit = options.pendingLimit ?? 1000;
    this.maxClockSkewS = options.maxClockSkewS;
    this.documents = new Documents(options.documents);
    this.household = deps.household;
    this.householdHex = toHex(deps.household.id);
    this.store = deps.store;
    this.clock = deps.clock;
    this.random = deps.random ?? secureRandom;
    this.scheme = deps.scheme ?? defaultEd25519;
  }

  /** Load the directory from the store and announce the household if it is new or renamed. */
  async start(): Promise<void> {
    if (this.started) return;
    const directoryRecords: Record[] = [];
    const documentRecords: Record[] = [];
    for await (const record of this.store.records()) {
      // Mail, messages and blobs are read by the apps from the store when asked for.
      if (record.kind === RecordKind.Directory) directoryRecords.push(record);
      else if (DOCUMENT_ORDER.has(record.kind)) documentRecords.push(record);
    }
    // Documents converge in any order, but an update that comes before its document's genesis
    // has to wait in a bounded set, and a big store overflows it. So: geneses, then permission
    // changes, then updates, each in the order they were written.
    documentRecords.sort((a, b) => DOCUMENT_ORDER.get(a.kind)! - DOCUMENT_ORDER.get(b.kind)! || a.time - b.time || a.seq - b.seq);
    for (const record of documentRecords) this.documents.apply(record);
    // Household entries first, then members, each in seq order, so every key is known in time.
    directoryRecords.sort((a, b) => Number(a.authorKey === null) - Number(b.authorKey === null) || a.seq - b.seq);
    for (const record of directoryRecords) this.applyVerified(record, false);
    this.started = true;
    const me = this.directory.household(this.household.id);
    if (!me || me.name !== this.householdName || toHex(me.agreementKey) !== toHex(this.household.agreementKey)) {
      await this.publish(this.household, {
        kind: RecordKind.Directory,
        feed: directoryFeed(this.household.signingKey),
        fullKey: true,
        priority: Priority.Normal,
        payload: encodeDirectoryEntry({
          role: DirectoryRole.Household,
          signingKey: this.household.signingKey,
          agreementKey: this.household.agreementKey,
          name: this.householdName,
        }),
      });
    }
  }

  async stop(): Promise<void> {
    await this.publishQueue.catch(() => undefined);
    this.started = false;
  }

  now(): number {
    return unixSeconds(this.clock);
  }

  /**
   * Sign and durably store a new record by `author` (a local identity). The seq is the next
   * one in the author's feed. Resolves once the record is on disk (LevelDB sync write).
   */
  publish(author: Identity, fields: PublishFields): Promise<Record> {
    return this.commitLocal(author, fields.feed, (seq, time) => createRecord({ ...fields, seq, time }, author));
  }

  /** Create a document owned by `author`; resolves once its genesis is on disk. */
  async createDocument(author: Identity, init: DocumentInit): Promise<DocumentReplica> {
    const { replica, genesis } = this.documents.create(author, init, { time: this.now(), random: this.random });
    // Refused by the store (a full disk): the document was never made.
    await this.commitLocal(author, genesis.feed, () => genesis, () => void this.documents.forget(genesis.feed));
    return replica;
  }

  /**
   * Change a document as `author` and publish the change as one record. Resolves to null when
   * `mutate` changed nothing. Throws MeshError DOCUMENT_UNKNOWN or the replica's refusal
   * (e.g. the author may not write).
   */
  updateDocument(author: Identity, feed: Uint8Array, mutate: (doc: Y.Doc) => void): Promise<Record | null> {
    return this.commitLocal(author, feed, (seq, time) => this.replica(feed).makeUpdate(author, mutate, { seq, time }), () => this.reloadDocument(feed));
  }

  /** Let more authors write a document (only its owner can). */
  grantWriters(owner: Identity, feed: Uint8Array, writers: Uint8Array[]): Promise<Record> {
    return this.commitLocal(owner, feed, (seq, time) => this.replica(feed).grantWriters(owner, writers, { seq, time }), () => this.reloadDocument(feed));
  }

  /**
   * Make a replica what the store holds of its document again. A local change reaches the
   * replica as its record is made, before the store takes it; a record the store refuses (a
   * full disk) would otherwise stay in memory, shown until a restart, and its seq would make
   * every later change by the same author fail. Best effort: a store that cannot be read
   * leaves the replica as it is.
   */
  private async reloadDocument(feed: Uint8Array): Promise<void> {
    let records: Record[];
    try {
      records = await this.store.byFeed(feed);
    } catch {
      return;
    }
    // Read first, then swap without a pause: a reader never finds the document missing.
    this.documents.forget(feed);
    for (const record of records) this.documents.apply(record);
  }

  private replica(feed: Uint8Array): DocumentReplica {
    const replica = this.documents.get(feed);
    if (!replica?.meta) throw new MeshError('DOCUMENT_UNKNOWN', `no document ${toHex(feed)} is held here`);
    return replica;
  }

  /**
   * Make and store a local record, one at a time so seq numbers never collide: `make` gets the
   * author's next seq in the feed and the time, and may return null for "nothing to publish".
   */
  private commitLocal<T extends Record | null>(
    author: Identity,
    feed: Uint8Array,
    make: (seq: number, time: number) => T,
    undo?: () => void | Promise<void>,
  ): Promise<T> {
    const run = async (): Promise<T> => {
      const seq = (await this.store.latestSeq(author.id, feed)) + 1;
      const record = make(seq, this.now());
      if (record === null) return record;
      try {
        const [result] = await this.store.put([record], { sync: true, now: this.now() });
        if (!result || (result.status !== 'stored' && result.status !== 'duplicate')) {
          throw new MeshError(`PUBLISH_${(result?.status ?? 'failed').toUpperCase()}`, `the record could not be stored (${result?.status ?? 'no result'})`);
        }
      } catch (err) {
        await undo?.(); // what `make` did in memory goes with the record the store refused
        throw err;
      }
      this.applyVerified(record, true);
      return record;
    };
    const next = this.publishQueue.then(run, run);
    this.publishQueue = next.catch(() => undefined);
    return next;
  }

  /** Certify a member's keys with the household key (a directory entry), unless already done. */
  async certifyMember(name: string, member: Identity, role = DirectoryRole.Member): Promise<void> {
    const known = this.directory.household(this.household.id)?.members.get(name);
    if (known && toHex(known.signingKey) === toHex(member.signingKey) && toHex(known.agreementKey) === toHex(member.agreementKey)) return;
    await this.publish(this.household, {
      kind: RecordKind.Directory,
      feed: directoryFeed(this.household.signingKey),
      priority: Priority.Normal,
      payload: encodeDirectoryEntry({ role, signingKey: member.signingKey, agreementKey: member.agreementKey, name }),
    });
  }

  /**
   * Vouch for another household: this household knows it, so sync gives its records a larger
   * share of scarce airtime (mesh/send-queue.ts). Throws HOUSEHOLD_UNKNOWN for a name not in
   * the directory, HOUSEHOLD_AMBIGUOUS when several households carry it.
   */
  async vouch(householdName: string): Promise<void> {
    const named = this.directory.householdsNamed(householdName).filter((h) => toHex(h.id) !== toHex(this.household.id));
    if (named.length === 0) throw new MeshError('HOUSEHOLD_UNKNOWN', `no household "${householdName}" is known yet`);
    if (named.length > 1) throw new MeshError('HOUSEHOLD_AMBIGUOUS', `${named.length} households are named "${householdName}"`);
    const subject = named[0]!;
    if (this.directory.vouchersOf(subject.id).has(toHex(this.household.id))) return;
    await this.publish(this.household, {
      kind: RecordKind.Directory,
      feed: directoryFeed(this.household.signingKey),
      priority: Priority.Normal,
      payload: encodeDirectoryEntry({ role: DirectoryRole.Vouch, signingKey: subject.signingKey, agreementKey: subject.agreementKey, name: subject.name }),
    });
  }

  /**
   * How much this node trusts an author's household, as a fair-share weight: 4 for itself and
   * households it vouched for, 2 for households vouched for by those, 1 for households
   * vouched for by anyone known, 0.25 for strangers.
   */
  trustOf(household: Uint8Array): number {
    const me = this.householdHex;
    if (toHex(household) === me) return 4;
    const vouchers = this.directory.vouchersOf(household);
    if (vouchers.has(me)) return 4;
    for (const v of vouchers) if (this.directory.vouchersOf(fromHex(v)).has(me)) return 2;
    return vouchers.size > 0 ? 1 : 0.25;
  }

  /**
   * Offer records received from elsewhere. Bad ones are counted and reported, never thrown.
   * `source` is passed on to 'record' listeners (sync uses it to know where a record came from).
   */
  async ingest(frames: Uint8Array[], source?: unknown): Promise<IngestResult[]> {
    const results: IngestResult[] = [];
    const verified: VerifiedRecord[] = [];
    for (const bytes of frames) {
      let record: Record;
      try {
        record = decodeRecord(bytes);
      } catch (err) {
        results.push(this.reject(null, err));
        continue;
      }
      results.push(this.verifyOrHold(record, verified));
    }
    await this.storeVerified(verified, results, source);
    return results;
  }

  private verifyOrHold(record: Record, verified: VerifiedRecord[]): IngestResult {
    const id = toHex(record.id);
    try {
      verifyRecord(record, { now: this.now(), resolveKey: this.directory.resolveKey, scheme: this.scheme, maxClockSkewS: this.maxClockSkewS });
    } catch (err) {
      if (err instanceof MeshError && err.code === 'RECORD_UNKNOWN_AUTHOR') {
        if (this.pending.size >= this.pendingLimit) return this.reject(id, new MeshError('PENDING_FULL', 'too many records wait for unknown authors'));
        this.pending.set(id, record);
        return { id, status: 'pending' };
      }
      return this.reject(id, err);
    }
    verified.push({ record, id });
    return { id, status: 'stored' };
  }

  /**
   * Store the verified records in one batch and settle their results. Linear in the records:
   * every id is hex-encoded once (a simulator's start ingests thousands of records at once).
   */
  private async storeVerified(verified: VerifiedRecord[], results: IngestResult[], source: unknown): Promise<void> {
    if (verified.length === 0) return;
    const outcomes = await this.store.put(verified.map((v) => v.record), { sync: false, now: this.now() });
    // The first outcome per id counts: a later copy in the same batch is a 'duplicate' of it.
    const byId = new Map<string, string>();
    outcomes.forEach((o, i) => {
      const v = verified[i];
      const id = v !== undefined && o.id === v.record.id ? v.id : toHex(o.id);
      if (!byId.has(id)) byId.set(id, o.status);
    });
    // Each record settles the first result of its id still marked 'stored' (a result that stays
    // 'stored' is found again by the next copy), as a search of `results` in order would.
    const unsettled = new Map<string, IngestResult[]>();
    for (const r of results) {
      if (r.status !== 'stored' || r.id === null) continue;
      const list = unsettled.get(r.id);
      if (list) list.push(r);
      else unsettled.set(r.id, [r]);
    }
    let directoryChanged = false;
    for (const { record, id } of verified) {
      const status = byId.get(id) ?? 'rejected';
      const list = unsettled.get(id);
      const result = list?.[0];
      if (result) {
        result.status = status as IngestResult['status'];
        if (result.status !== 'stored') list!.shift();
      }
      if (status === 'stored') directoryChanged = this.applyVerified(record, true, source) || directoryChanged;
    }
    if (directoryChanged && this.pending.size > 0) {
      const waiting = [...this.pending.values()];
      this.pending.clear();
      const again: VerifiedRecord[] = [];
      const retry = waiting.map((r) => this.verifyOrHold(r, again));
      await this.storeVerified(again, retry, source);
    }
  }

  /** Feed a stored, verified record to the directory; returns true when the directory changed. */
  private applyVerified(record: Record, announce: boolean, source?: unknown): boolean {
    let changed = false;
    if (record.kind === RecordKind.Directory) {
      const key = record.authorKey ?? this.directory.resolveKey(record.author)[0];
      if (key) changed = this.directory.apply(record, key);
    } else if (DOCUMENT_ORDER.has(record.kind)) {
      this.documents.apply(record); // mail, messages and blobs are the apps' to read
    }
    if (announce) this.emit('record', record, source);
    return changed;
  }

  private reject(id: string | null, err: unknown): IngestResult {
    const code = err instanceof MeshError ? err.code : 'INTERNAL';
    this.rejected.set(code, (this.rejected.get(code) ?? 0) + 1);
    return { id, status: 'rejected', code };
  }

  get pendingCount(): number {
    return this.pending.size;
  }
}
