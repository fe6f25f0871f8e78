/**
 * The mail index: for each member of this household, a summary of every mail in their inbox
 * and Sent folder (id, from, to, subject, thread, date, size, read state), so listing a
 * folder never opens a sealed record. Opening one costs an X25519 agreement (~5 ms on this
 * machine, more on a Pi): 10,000 mails took seconds per request before this index.
 *
 * It is kept as records arrive (the node's 'record' event: each mail is opened once, by each
 * local member it is sealed to) and persisted in the node-local store, never synced:
 *
 *   mail-index/<member key id>/<record id>   JSON summary (see `encodeSummary`), or "-" when the
 *                                            record is sealed to the member but is no mail of theirs
 *   mail-body/<member key id>/<record id>    the body, read only for the mails a page shows
 *
 * `<member key id>` is the hex key id of the member's X25519 key, so a member whose keys change
 * starts a new index. On a member's first listing the persisted summaries are loaded and
 * checked against the store's recipient index (ids only): mails stored while nobody indexed
 * them (a crash, an older version) are opened then, and entries of expired mails dropped.
 *
 * The opened text on disk is what the member's own keys, kept in the same data directory,
 * open anyway: the index adds no exposure at rest, and none on the air.
 */
import { toHex, utf8 } from '../../mesh/bytes.ts';
import { keyId, type Identity } from '../../mesh/identity.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { RecordKind, type Record } from '../../mesh/record.ts';
import { sealedRecipients } from '../../mesh/seal.ts';
import type { MailContent } from './mail-codec.ts';

const INDEX = 'mail-index/';
const BODY = 'mail-body/';
const NOT_MAIL = '-';

/** What the index keeps of one mail for one member. */
export interface MailSummary {
  /** Record id, hex. */
  id: string;
  /** The sender as shown (the record's signer, as the directory names it). */
  from: string;
  to: string[];
  subject: string;
  /** The subject without Re:/Fwd: prefixes, lower case: mails with the same one form a thread. */
  thread: string;
  /** Unix seconds (the record's time). */
  time: number;
  /** Unix seconds, or null. */
  expires: number | null;
  /** Body length in UTF-8 bytes. */
  size: number;
  /** Addressed to the member. */
  inbox: boolean;
  /** Written by the member. */
  sent: boolean;
  /** Internet mail: SPF/DKIM/DMARC as the gateway that took it in found them. */
  authentication?: MailContent['authentication'];
}

/** The thread a subject belongs to: without any number of leading Re:/Fwd:, trimmed, lower case. */
export function threadKey(subject: string): string {
  return subject.replace(/^(\s*(re|fwd?|aw)\s*:\s*)+/i, '').trim().toLowerCase() || '(no subject)';
}

function encodeSummary(s: MailSummary): string {
  return JSON.stringify({ v: 1, f: s.from, t: s.to, s: s.subject, d: s.time, e: s.expires, z: s.size, i: s.inbox, o: s.sent, ...(s.authentication ? { a: s.authentication } : {}) });
}

function decodeSummary(id: string, text: string): MailSummary | null {
  try {
    const v = JSON.parse(text) as { v?: unknown; f?: unknown; t?: unknown; s?: unknown; d?: unknown; e?: unknown; z?: unknown; i?: unknown; o?: unknown; a?: unknown };
    if (v.v !== 1 || typeof v.f !== 'string' || !Array.isArray(v.t) || !v.t.every((a) => typeof a === 'string') || typeof v.s !== 'string') return null;
    if (typeof v.d !== 'number' || (v.e !== null && typeof v.e !== 'number') || typeof v.z !== 'number') return null;
    const a = v.a as MailSummary['authentication'] | undefined;
    const authentication = a && typeof a === 'object' && typeof a.spf === 'string' && typeof a.dkim === 'string' && typeof a.dmarc === 'string' ? { spf: a.spf, dkim: a.dkim, dmarc: a.dmarc } : undefined;
    return { id, from: v.f, to: v.t as string[], subject: v.s, thread: threadKey(v.s), time: v.d, expires: v.e as number | null, size: v.z, inbox: v.i === true, sent: v.o === true, ...(authentication ? { authentication } : {}) };
  } catch {
    return null;
  }
}

/** Newest first; the same second in id order. */
function newerFirst(a: MailSummary, b: MailSummary): number {
  return b.time - a.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Insert into an array kept in `newerFirst` order (new mail usually lands at the front). */
function insertSorted(list: MailSummary[], s: MailSummary): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (newerFirst(list[mid]!, s) < 0) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, s);
}

function removeFrom(list: MailSummary[], s: MailSummary): void {
  const i = list.indexOf(s);
  if (i >= 0) list.splice(i, 1);
}

/** One member's folders in memory: summaries only (bodies stay on disk). */
class MemberFolders {
  readonly byId = new Map<string, MailSummary | null>();
  readonly inbox: MailSummary[] = [];
  readonly sent: MailSummary[] = [];
  readonly read = new Set<string>();
  /** Bodies of mails whose index the store refused (a full disk): shown from here until a load indexes them again. */
  readonly unsavedBodies = new Map<string, string>();
  loaded: Promise<void> | null = null;

  add(s: MailSummary | null, id: string): void {
    if (this.byId.get(id) !== undefined) return;
    this.byId.set(id, s);
    if (!s) return;
    if (s.inbox) insertSorted(this.inbox, s);
    if (s.sent) insertSorted(this.sent, s);
  }

  drop(id: string): void {
    const s = this.byId.get(id);
    this.byId.delete(id);
    this.unsavedBodies.delete(id);
    if (!s) return;
    removeFrom(this.inbox, s);
    removeFrom(this.sent, s);
  }
}

export interface MailIndexDeps {
  node: MeshNode;
  /** The identity of a local member by name (keys from the data directory). */
  memberIdentity(name: string): Promise<Identity>;
  /**
   * Open a mail record as `me`: its content and the sender as shown, or null when it is not
   * a mail `me` can read.
   */
  openMail(record: Record, me: Identity): { content: MailContent; from: string; authentication?: MailContent['authentication'] } | null;
  /** The member's mesh address (`name@household`). */
  address(name: string): string;
}

export interface PageOptions {
  /** At most this many (newest first). */
  limit: number;
  /** Only mails older than the mail with this id (the last one of the previous page). */
  before?: string;
  /** Only this thread (see `threadKey`). */
  thread?: string;
}

/** A page of a folder: summaries with their bodies. */
export interface IndexedMail extends MailSummary {
  body: string;
  read: boolean;
}

export class MailIndex {
  private readonly members = new Map<string, MemberFolders>();
  /** Indexing that has begun and not finished: a listing waits for it (a mail just sent shows). */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly deps: MailIndexDeps) {
    deps.node.on('record', (record) => {
      if (record.kind !== RecordKind.Mail || !record.sealed) return;
      const work = this.indexArrival(record).catch(() => undefined);
      this.inFlight.add(work);
      void work.finally(() => this.inFlight.delete(work));
    });
  }

  /** Index a stored mail for each local member it is sealed to. */
  private async indexArrival(record: Record): Promise<void> {
    const { node } = this.deps;
    let recipients: Uint8Array[];
    try {
      recipients = sealedRecipients(record.payload);
    } catch {
      return;
    }
    const own = toHex(node.household.id);
    for (const recipient of recipients) {
      const owner = node.directory.ownerOfAgreementKey(recipient);
      if (!owner || !('household' in owner) || toHex(owner.household.id) !== own) continue;
      try {
        const me = await this.deps.memberIdentity(owner.name);
        if (toHex(keyId(me.agreementKey)) !== toHex(recipient)) continue;
        await this.indexRecord(record, me, owner.name);
      } catch {
        // A member without keys here (removed), or a store closing: the next load catches up.
      }
    }
  }

  /** Open, summarise and persist one record for one member; adds it to memory if loaded. */
  private async indexRecord(record: Record, me: Identity, name: string): Promise<void> {
    const member = toHex(keyId(me.agreementKey));
    const id = toHex(record.id);
    const folders = this.members.get(member);
    if (folders?.byId.get(id) !== undefined) return;
    const opened = this.deps.openMail(record, me);
    const address = this.deps.address(name);
    const inbox = opened !== null && opened.content.to.includes(address);
    const sent = opened !== null && toHex(record.author) === toHex(me.id);
    const summary: MailSummary | null =
      opened && (inbox || sent)
        ? {
            id,
            from: opened.from,
            to: opened.content.to,
            subject: opened.content.subject,
            thread: threadKey(opened.content.subject),
            time: record.time,
            expires: record.expires,
            size: utf8(opened.content.body).length,
            inbox,
            sent,
            ...(opened.authentication ? { authentication: opened.authentication } : {}),
          }
        : null;
    const { store } = this.deps.node;
    try {
      if (summary) await store.putLocal(`${BODY}${member}/${id}`, opened!.content.body);
      await store.putLocal(`${INDEX}${member}/${id}`, summary ? encodeSummary(summary) : NOT_MAIL);
    } catch (err) {
      // The mail is stored but its index is not (a full disk): list it all the same, its body
      // from memory; the next load finds it unindexed and indexes it again.
      if (!folders) throw err;
      if (summary) folders.unsavedBodies.set(id, opened!.content.body);
    }
    folders?.add(summary, id);
  }

  /** The member's folders, loaded and caught up with the store on first use. */
  private async folders(name: string, me: Identity): Promise<MemberFolders> {
    const member = toHex(keyId(me.agreementKey));
    let folders = this.members.get(member);
    if (!folders) {
      folders = new MemberFolders();
      this.members.set(member, folders);
    }
    // Mails being indexed as they arrive finish first, so loading does not open them twice.
    if (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    folders.loaded ??= this.load(folders, name, me).catch((err: unknown) => {
      folders.loaded = null; // try again on the next listing
      throw err;
    });
    await folders.loaded;
    if (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    return folders;
  }

  private async load(folders: MemberFolders, name: string, me: Identity): Promise<void> {
    const { store } = this.deps.node;
    const member = toHex(keyId(me.agreementKey));
    const prefix = `${INDEX}${member}/`;
    const persisted = new Map<string, string>();
    for (const [key, value] of await store.listLocal(prefix)) persisted.set(key.slice(prefix.length), value);
    for (const [key] of await store.listLocal(`mail-read/${name}/`)) folders.read.add(key.slice(`mail-read/${name}/`.length));
    const held = new Set<string>();
    for (const raw of await store.idsByRecipient(keyId(me.agreementKey))) {
      const id = toHex(raw);
      held.add(id);
      const text = persisted.get(id);
      const summary = text === undefined || text === NOT_MAIL ? null : decodeSummary(id, text);
      if (text === NOT_MAIL) folders.add(null, id);
      else if (summary) folders.add(summary, id);
      else {
        // Stored while nobody indexed it: open it now (once).
        const record = await store.get(raw).catch(() => undefined);
        if (record && record.kind === RecordKind.Mail) await this.indexRecord(record, me, name);
        else if (record) folders.add(null, id);
      }
    }
    // Entries whose record has expired from the store.
    for (const id of persisted.keys()) {
      if (held.has(id)) continue;
      folders.drop(id);
      await store.deleteLocal(`${INDEX}${member}/${id}`).catch(() => undefined); // a full disk: the next load tries again
      await store.deleteLocal(`${BODY}${member}/${id}`).catch(() => undefined);
    }
  }

  /** A page of a folder, newest first, with bodies and read state. */
  async page(name: string, folder: 'inbox' | 'sent', options: PageOptions): Promise<IndexedMail[]> {
    const me = await this.deps.memberIdentity(name);
    const folders = await this.folders(name, me);
    const list = folder === 'inbox' ? folders.inbox : folders.sent;
    const now = this.deps.node.now();
    let start = 0;
    if (options.before !== undefined) {
      const anchor = folders.byId.get(options.before);
      if (!anchor) return [];
      start = list.indexOf(anchor) + 1;
      if (start === 0) return [];
    }
    const chosen: MailSummary[] = [];
    for (let i = start; i < list.length && chosen.length < options.limit; i++) {
      const s = list[i]!;
      if (s.expires !== null && s.expires <= now) continue;
      if (options.thread !== undefined && s.thread !== options.thread) continue;
      chosen.push(s);
    }
    const member = toHex(keyId(me.agreementKey));
    const { store } = this.deps.node;
    const bodies = await Promise.all(chosen.map((s) => store.getLocal(`${BODY}${member}/${s.id}`)));
    return chosen.map((s, i) => ({ ...s, body: bodies[i] ?? folders.unsavedBodies.get(s.id) ?? '', read: folder === 'sent' || folders.read.has(s.id) }));
  }

  /** Remember that a member read a mail (node-local, not synced). */
  async markRead(name: string, id: string): Promise<void> {
    await this.deps.node.store.putLocal(`mail-read/${name}/${id}`, '1');
    const me = await this.deps.memberIdentity(name);
    this.members.get(toHex(keyId(me.agreementKey)))?.read.add(id);
  }

  /**
   * Load a member's index now rather than on their first listing (the daemon does it after
   * start: a store from a version without the index has every mail opened once here).
   */
  async warm(name: string): Promise<void> {
    await this.folders(name, await this.deps.memberIdentity(name));
  }
}
