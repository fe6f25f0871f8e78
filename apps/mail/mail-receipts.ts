/**
 * Delivery receipts: how a sender's node learns that a mail reached the node of a recipient
 * in another household. When a node stores a mail sealed to one of its members (or to the
 * household itself, as a mail gateway) written in another household, it publishes a small
 * public receipt, signed by the household, naming the mail by a short id. The sender's node
 * shows the mail `delivered` once receipts from every recipient's household are in.
 *
 * A receipt says only "household H holds mail X", and the mail record already names its
 * recipients' key ids to every relay, so nothing new is disclosed beyond the time of
 * arrival. Receipts are batched: mails stored together are acknowledged by one record.
 *
 * Receipt record: kind Mail, not sealed, feed `receiptFeed(household id)`, author the
 * household, Priority.Normal, the mail's lifetime. Payload layout, version 1:
 *
 *   off  size  field
 *   0    1     version = 1
 *   1    1     count n (1..MAX_RECEIPT_IDS)
 *   2    8n    the first 8 bytes of each mail's record id
 *
 * At 12 ids the payload is 98 bytes: with the record envelope, one LoRa frame.
 */
import { createHash } from 'node:crypto';
import { ByteReader, ByteWriter, equalBytes, toHex, utf8 } from '../../mesh/bytes.ts';
import { MeshError } from '../../mesh/errors.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { Priority, RecordKind, type Record } from '../../mesh/record.ts';
import { sealedRecipients } from '../../mesh/seal.ts';

export const RECEIPT_VERSION = 1;
export const MAX_RECEIPT_IDS = 12;
export const RECEIPT_ID_BYTES = 8;

/** The feed a household's delivery receipts go in. */
export function receiptFeed(household: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(utf8('citizen-mail-receipt-v1')).update(household).digest().subarray(0, 8));
}

export function encodeReceipt(ids: readonly Uint8Array[]): Uint8Array {
  if (ids.length < 1 || ids.length > MAX_RECEIPT_IDS) throw new MeshError('RECEIPT_MALFORMED', `a receipt names 1 to ${MAX_RECEIPT_IDS} mails`);
  const w = new ByteWriter(2 + RECEIPT_ID_BYTES * ids.length).u8(RECEIPT_VERSION).u8(ids.length);
  for (const id of ids) w.bytes(id.subarray(0, RECEIPT_ID_BYTES));
  return w.finish();
}

/** The short mail ids a receipt names. Throws MeshError RECEIPT_VERSION / RECEIPT_MALFORMED. */
export function decodeReceipt(bytes: Uint8Array): Uint8Array[] {
  const r = new ByteReader(bytes, 'receipt', 'RECEIPT_MALFORMED');
  const version = r.u8();
  if (version !== RECEIPT_VERSION) throw new MeshError('RECEIPT_VERSION', `unknown receipt version ${version}`);
  const n = r.u8();
  if (n < 1 || n > MAX_RECEIPT_IDS) throw new MeshError('RECEIPT_MALFORMED', `a receipt names ${n} mails`);
  const ids: Uint8Array[] = [];
  for (let i = 0; i < n; i++) ids.push(Uint8Array.from(r.bytes(RECEIPT_ID_BYTES)));
  if (r.remaining !== 0) throw new MeshError('RECEIPT_MALFORMED', `a receipt has ${r.remaining} trailing bytes`);
  return ids;
}

/** True for a receipt record (by its place, not its content). */
export function isReceipt(record: Record): boolean {
  return record.kind === RecordKind.Mail && !record.sealed && equalBytes(record.feed, receiptFeed(record.author));
}

export interface MailReceiptsOptions {
  /** Lifetime of a receipt in seconds (a mail's). */
  ttlS: number;
}

/**
 * Publishes receipts for mails this node receives, and keeps which households acknowledged
 * which mails (from receipts as they arrive, and from the store for each household on first
 * need).
 */
export class MailReceipts {
  /** Short mail id (hex) → households (hex) that acknowledged it. */
  private readonly acks = new Map<string, Set<string>>();
  /** Households whose stored receipts have been read. */
  private readonly loaded = new Map<string, Promise<void>>();
  private waiting: Uint8Array[] = [];
  private publishing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly node: MeshNode,
    private readonly options: MailReceiptsOptions,
  ) {
    node.on('record', (record) => {
      if (record.kind !== RecordKind.Mail) return;
      if (isReceipt(record)) this.learn(record);
      else if (record.sealed && this.forUs(record)) this.acknowledge(record.id);
    });
  }

  /** A sealed mail from another household, sealed to one of our members or to the household. */
  private forUs(record: Record): boolean {
    const { directory, household } = this.node;
    const own = toHex(household.id);
    const author = directory.householdOfAuthor(record.author);
    if (!author || toHex(author.id) === own) return false;
    let recipients: Uint8Array[];
    try {
      recipients = sealedRecipients(record.payload);
    } catch {
      return false;
    }
    return recipients.some((r) => {
      const owner = directory.ownerOfAgreementKey(r);
      if (!owner) return false;
      return 'household' in owner ? toHex(owner.household.id) === own : toHex(owner.id) === own;
    });
  }

  private acknowledge(id: Uint8Array): void {
    this.waiting.push(id.subarray(0, RECEIPT_ID_BYTES));
    // Mails stored in one batch emit their events together: one receipt covers them.
    // A receipt that cannot be stored (the node stopping, a full disk) is not retried: the mail
    // then simply stays "sent to the mesh" at its sender.
    if (this.waiting.length === 1) queueMicrotask(() => void this.flush().catch(() => undefined));
  }

  /** Publish receipts for the mails waiting for one; resolves once they are stored. */
  flush(): Promise<void> {
    const run = async () => {
      while (this.waiting.length > 0) {
        const ids = this.waiting.splice(0, MAX_RECEIPT_IDS);
        await this.node.publish(this.node.household, {
          kind: RecordKind.Mail,
          feed: receiptFeed(this.node.household.id),
          priority: Priority.Normal,
          ttl: this.options.ttlS,
          payload: encodeReceipt(ids),
        });
      }
    };
    const next = this.publishing.then(run, run);
    this.publishing = next.catch(() => undefined);
    return next;
  }

  private learn(record: Record): void {
    let ids: Uint8Array[];
    try {
      ids = decodeReceipt(record.payload);
    } catch {
      return; // not a receipt we can read: no evidence
    }
    const household = toHex(record.author);
    for (const id of ids) {
      const key = toHex(id);
      let set = this.acks.get(key);
      if (!set) this.acks.set(key, (set = new Set()));
      set.add(household);
    }
  }

  /** Read a household's stored receipts once (receipts that arrived before this node started). */
  private ensureLoaded(household: Uint8Array): Promise<void> {
    const key = toHex(household);
    let done = this.loaded.get(key);
    if (!done) {
      done = this.node.store.byAuthor(household, receiptFeed(household)).then((records) => {
        for (const r of records) if (isReceipt(r)) this.learn(r);
      });
      this.loaded.set(key, done);
    }
    return done;
  }

  /** The households (hex ids) among `households` that acknowledged the mail `id`. */
  async acknowledgedBy(id: Uint8Array, households: readonly Uint8Array[]): Promise<Set<string>> {
    await Promise.all(households.map((h) => this.ensureLoaded(h)));
    const acks = this.acks.get(toHex(id.subarray(0, RECEIPT_ID_BYTES)));
    return new Set(households.map(toHex).filter((h) => acks?.has(h)));
  }
}
