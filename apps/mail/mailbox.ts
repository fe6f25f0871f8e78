/**
 * Mail for the members of this household, on top of the mesh: sending seals the mail to every
 * recipient (and to the sender, for the Sent folder) and stores it as a record that sync
 * carries; reading opens the sealed records addressed to the member.
 *
 * Addresses (SPEC §3): `member@household` inside the mesh; an internet address
 * (`bob@example.org`) is sealed to a household that announced an SMTP gateway in the
 * directory (gateway/announce.ts), which hands it to its smarthost (apps/mail/mail-gateway.ts).
 * Without a known gateway, internet addresses are refused with `no_gateway`. Mail that came
 * from the internet, and bounces, are signed by the gateway household itself.
 *
 * Mail to a member of another household whose keys have not reached this node yet waits in a
 * node-local outbox (the sender's own plaintext, on the sender's own node, never synced) and
 * is sealed and published as soon as the directory learns every recipient's keys. Its id is
 * the outbox id until then; the Sent folder shows it with `state: "waiting for keys"`.
 */
import { createHash } from 'node:crypto';
import { toHex, utf8 } from '../../mesh/bytes.ts';
import { GatewayService, isValidName, type KnownGateway } from '../../mesh/directory.ts';
import { keyId, type Identity } from '../../mesh/identity.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { Priority, RecordKind, type Record } from '../../mesh/record.ts';
import { open, seal } from '../../mesh/seal.ts';
import { AppError } from '../errors.ts';
import type { MailInput, MailService, MailView } from '../daemon/services.ts';
import { decodeMail, encodeMail, MAX_MAIL_RECIPIENTS, MAX_SUBJECT_BYTES, type MailContent } from './mail-codec.ts';

/** Mail lives 30 days in the mesh unless delivered earlier. */
export const MAIL_TTL_S = 30 * 24 * 3600;
export const MAX_BODY_CHARS = 12_000;

const INTERNET_ADDRESS = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{1,253}$)[a-z0-9-]+(\.[a-z0-9-]+)+$/;

/** True for an internet mail address (`bob@example.org`), as opposed to `member@household`. */
export function isInternetAddress(address: string): boolean {
  return INTERNET_ADDRESS.test(address) && !isValidName(address.slice(address.indexOf('@') + 1));
}

/** The feed a member's outgoing mail uses. */
export function mailFeed(author: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(utf8('citizen-mail-v1')).update(author).digest().subarray(0, 8));
}

export interface MailboxDeps {
  node: MeshNode;
  /** The member's identity (keys kept by the daemon), certified in the directory. */
  memberIdentity(name: string): Promise<Identity>;
  /** True when `name` has an account here (it may have been added since the node started). */
  isLocalMember?(name: string): Promise<boolean>;
}

const OUTBOX = 'mail-outbox/';

interface OutboxEntry {
  user: string;
  to: string[];
  subject: string;
  body: string;
  /** Unix seconds. */
  created: number;
}

interface OpenedMail {
  content: MailContent;
  from: string;
  record: Record;
  /** SPF/DKIM/DMARC, believed only from a household that announced an SMTP gateway. */
  authentication?: MailContent['authentication'];
}

export class Mailbox implements MailService {
  /** Opened mails by reader and record id: a record never changes, so neither does its plaintext. */
  private readonly cache = new Map<string, OpenedMail | null>();

  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly deps: MailboxDeps) {
    // A new directory entry may complete the keys a waiting mail needs.
    deps.node.on('record', (record) => {
      if (record.kind === RecordKind.Directory) void this.flushOutbox();
    });
  }

  /** Send every waiting mail whose recipients are all known now. */
  flushOutbox(): Promise<void> {
    const run = async () => {
      for (const [key, value] of await this.deps.node.store.listLocal(OUTBOX)) {
        const entry = JSON.parse(value) as OutboxEntry;
        if (entry.to.some((address) => !this.resolvable(address))) continue;
        const record = await this.publish(entry.user, entry.to, entry);
        await this.deps.node.store.putLocal(`mail-sent-as/${key.slice(OUTBOX.length)}`, toHex(record.id));
        await this.deps.node.store.deleteLocal(key);
      }
    };
    this.flushing = this.flushing.then(run, run);
    return this.flushing;
  }

  /** The SMTP gateway internet mail goes through: our own household if it is one, else the first by name. */
  mailGateway(): KnownGateway | undefined {
    const gateways = this.deps.node.directory.gateways().filter((g) => g.services & GatewayService.Smtp);
    const own = gateways.find((g) => toHex(g.household.id) === toHex(this.deps.node.household.id));
    return own ?? gateways.sort((a, b) => a.household.name.localeCompare(b.household.name))[0];
  }

  private resolvable(address: string): boolean {
    return isInternetAddress(address) ? this.mailGateway() !== undefined : this.deps.node.directory.member(address) !== undefined;
  }

  private address(member: string): string {
    return `${member}@${this.deps.node.householdName}`;
  }

  async send(user: string, input: MailInput): Promise<{ id: string }> {
    const { node } = this.deps;
    const to = [...new Set(input.to.map((a) => a.trim().toLowerCase()))];
    if (to.length === 0) throw new AppError('no_recipients', 'a mail needs at least one recipient');
    if (to.length > MAX_MAIL_RECIPIENTS) throw new AppError('too_many_recipients', `a mail can have at most ${MAX_MAIL_RECIPIENTS} recipients`);
    if (utf8(input.subject).length > MAX_SUBJECT_BYTES) throw new AppError('subject_too_long', `the subject is longer than ${MAX_SUBJECT_BYTES} bytes`);
    if (input.body.length > MAX_BODY_CHARS) throw new AppError('body_too_long', `the body is longer than ${MAX_BODY_CHARS} characters; send long texts as a file`);
    let waiting = false;
    for (const address of to) {
      const at = address.indexOf('@');
      const member = address.slice(0, at);
      const household = address.slice(at + 1);
      if (at < 1 || !isValidName(member) || household.length === 0) {
        throw new AppError('bad_address', `"${address}" is not a mail address; write member@household`);
      }
      if (!isValidName(household)) {
        if (!isInternetAddress(address)) throw new AppError('bad_address', `"${address}" is not a mail address`);
        if (!this.mailGateway()) throw new AppError('no_gateway', `"${address}" is an internet address and no mail gateway is known in this mesh yet`);
        continue;
      }
      if (household === node.householdName && !node.directory.member(address) && (await this.deps.isLocalMember?.(member))) {
        await this.deps.memberIdentity(member); // certifies a member added while the node runs
      }
      if (node.directory.member(address)) continue;
      // Our own household's members are all known here: an unknown one is a mistake.
      if (household === node.householdName) throw new AppError('unknown_recipient', `no member "${address}" in this household`);
      waiting = true;
    }
    if (waiting) {
      const outboxId = toHex(node.random(16));
      const entry: OutboxEntry = { user, to, subject: input.subject, body: input.body, created: node.now() };
      await node.store.putLocal(`${OUTBOX}${outboxId}`, JSON.stringify(entry), { sync: true });
      return { id: outboxId };
    }
    const record = await this.publish(user, to, input);
    return { id: toHex(record.id) };
  }

  /** Seal to every recipient and the sender, and publish. All recipients must be known. */
  private async publish(user: string, to: string[], input: { subject: string; body: string }): Promise<Record> {
    const { node } = this.deps;
    const keys = to.filter((a) => !isInternetAddress(a)).map((address) => node.directory.member(address)!.agreementKey);
    // Internet recipients: the gateway household opens the mail to hand it to its smarthost.
    const gateway = to.some(isInternetAddress) ? this.mailGateway() : undefined;
    if (gateway && !keys.some((k) => toHex(k) === toHex(gateway.household.agreementKey))) keys.push(gateway.household.agreementKey);
    const sender = await this.deps.memberIdentity(user);
    if (!keys.some((k) => toHex(k) === toHex(sender.agreementKey))) keys.push(sender.agreementKey);
    const plaintext = encodeMail({ from: this.address(user), to, subject: input.subject, body: input.body });
    return node.publish(sender, {
      kind: RecordKind.Mail,
      feed: mailFeed(sender.id),
      sealed: true,
      priority: Priority.Urgent,
      ttl: MAIL_TTL_S,
      payload: seal(plaintext, keys, sender.id, node.random),
    });
  }

  /**
   * Publish mail signed by this household itself, sealed to mesh members `to` (all known):
   * internet mail that the SMTP gateway took in, and bounces. `from` is shown as the sender.
   * Throws AppError unknown_recipient when a recipient is not known.
   */
  async deliverAsHousehold(mail: { from: string; to: string[]; subject: string; body: string; authentication?: MailContent['authentication'] }): Promise<{ id: string }> {
    const { node } = this.deps;
    const keys = mail.to.map((address) => {
      const member = node.directory.member(address);
      if (!member) throw new AppError('unknown_recipient', `no member "${address}" is known`);
      return member.agreementKey;
    });
    const plaintext = encodeMail({ from: mail.from, to: mail.to, subject: mail.subject.slice(0, 900), body: mail.body.slice(0, MAX_BODY_CHARS + 1000), ...(mail.authentication ? { authentication: mail.authentication } : {}) });
    const record = await node.publish(node.household, {
      kind: RecordKind.Mail,
      feed: mailFeed(node.household.id),
      sealed: true,
      priority: Priority.Urgent,
      ttl: MAIL_TTL_S,
      payload: seal(plaintext, keys, node.household.id, node.random),
    });
    return { id: toHex(record.id) };
  }

  async list(user: string, folder: 'inbox' | 'sent'): Promise<MailView[]> {
    const { node } = this.deps;
    const me = await this.deps.memberIdentity(user);
    const address = this.address(user);
    const records =
      folder === 'sent' ? await node.store.byAuthor(me.id, mailFeed(me.id)) : await node.store.byRecipient(keyId(me.agreementKey));
    const views: MailView[] = [];
    for (const record of records) {
      if (record.kind !== RecordKind.Mail) continue;
      const mail = this.openMail(record, me);
      if (!mail) continue;
      if (folder === 'inbox' && !mail.content.to.includes(address)) continue;
      const read = folder === 'sent' || (await node.store.getLocal(`mail-read/${user}/${toHex(record.id)}`)) !== undefined;
      views.push({
        id: toHex(record.id),
        from: mail.from,
        to: mail.content.to,
        subject: mail.content.subject,
        body: mail.content.body,
        date: new Date(record.time * 1000).toISOString(),
        read,
        ...(mail.authentication ? { authentication: mail.authentication } : {}),
      });
    }
    if (folder === 'sent') {
      for (const [key, value] of await node.store.listLocal(OUTBOX)) {
        const entry = JSON.parse(value) as OutboxEntry;
        if (entry.user !== user) continue;
        views.push({
          id: key.slice(OUTBOX.length),
          from: address,
          to: entry.to,
          subject: entry.subject,
          body: entry.body,
          date: new Date(entry.created * 1000).toISOString(),
          read: true,
          state: 'waiting for keys',
        });
      }
    }
    return views.sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : a.id.localeCompare(b.id)));
  }

  /** Mark a mail read for a member (node-local state, not synced). */
  async markRead(user: string, id: string): Promise<void> {
    await this.deps.node.store.putLocal(`mail-read/${user}/${id}`, '1');
  }

  private isMailGateway(household: Uint8Array): boolean {
    const g = this.deps.node.directory.gateway(household);
    return g !== undefined && (g.services & GatewayService.Smtp) !== 0;
  }

  private openMail(record: Record, me: Identity): OpenedMail | null {
    const key = `${toHex(me.id)}/${toHex(record.id)}`;
    if (this.cache.has(key)) return this.cache.get(key)!;
    let opened: OpenedMail | null = null;
    try {
      const content = decodeMail(open(record.payload, me, record.author));
      // The sender is who signed the record, as the directory knows them, not what the text claims.
      const author = this.deps.node.directory.ownerOfSigningKey(record.author);
      // A household signs only mail its SMTP gateway took in from the internet, and bounces:
      // it may name an internet sender only if it announced itself as a mail gateway.
      let from = content.from;
      if (author && 'household' in author) from = `${author.name}@${author.household.name}`;
      else if (author && !this.isMailGateway(author.id) && isInternetAddress(content.from)) from = `postmaster@${author.name}`;
      else if (!author) from = content.from;
      const vouched = author && !('household' in author) && this.isMailGateway(author.id);
      opened = { content, from, record, ...(vouched && content.authentication ? { authentication: content.authentication } : {}) };
    } catch {
      opened = null; // not for this key, or forged: not shown
    }
    if (this.cache.size > 20_000) this.cache.clear();
    this.cache.set(key, opened);
    return opened;
  }
}
