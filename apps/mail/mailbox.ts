/**
 * Mail for the members of this household, on top of the mesh: sending seals the mail to every
 * recipient (and to the sender, for the Sent folder) and stores it as a record that sync
 * carries; reading opens the sealed records addressed to the member.
 *
 * Addresses (SPEC §3): `member@household` inside the mesh; an internet address
 * (`bob@example.org`) is sealed to a household that announced an SMTP gateway in the
 * directory (gateway/announce.ts), which hands it to its smarthost (apps/mail/mail-gateway.ts).
 * Mail that came from the internet, and bounces, are signed by the gateway household itself.
 *
 * Mail to a member of another household whose keys have not reached this node yet, or to an
 * internet address while no mail gateway is known in the mesh, waits in a node-local outbox
 * (the sender's own plaintext, on the sender's own node, never synced) and is sealed and
 * published as soon as the directory learns every recipient's keys and a gateway. Its id is
 * the outbox id until then; the Sent folder shows it with `state: "waiting for keys"` or
 * `"waiting for a mail gateway"`.
 */
import { createHash } from 'node:crypto';
import { fromHex, toHex, utf8 } from '../../mesh/bytes.ts';
import { GatewayService, isValidName, type KnownGateway } from '../../mesh/directory.ts';
import type { Identity } from '../../mesh/identity.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { Priority, RecordKind, type Record } from '../../mesh/record.ts';
import { open, seal } from '../../mesh/seal.ts';
import { AppError } from '../errors.ts';
import type { MailInput, MailService, MailView } from '../daemon/services.ts';
import { chooseMailGateway } from '../../gateway/gateway-choice.ts';
import { decodeMail, encodeMail, fitUtf8, MAX_ADDRESS_BYTES, MAX_MAIL_RECIPIENTS, MAX_SUBJECT_BYTES, type MailContent } from './mail-codec.ts';
import { MailIndex, threadKey, type IndexedMail } from './mail-index.ts';
import { MailReceipts } from './mail-receipts.ts';

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
  /** Household key ids (hex) heard directly on a link lately, to prefer the nearest mail gateway. */
  heardHouseholds?(): ReadonlySet<string>;
  /** Verified neighbours on the links that are up now (from sync); absent: none known. */
  neighbours?(): number;
  /** Neighbours heard sending the record `id` (from sync): they hold it. Absent: unknown. */
  carriers?(id: Uint8Array): number;
}

/** Mails a folder page holds when the caller does not say. */
export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;

/** Which part of a folder to list: newest first, `limit` mails older than `before`, or one thread. */
export interface MailListOptions {
  limit?: number;
  /** The id of the last mail of the previous page. */
  before?: string;
  /** A thread key (`thread` of a listed mail). */
  thread?: string;
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
  /** SPF/DKIM/DMARC, believed only from a household that announced an SMTP gateway. */
  authentication?: MailContent['authentication'];
}

/** Local key: the last time (Unix seconds) a neighbour sent this node a record. */
const MESH_HEARD = 'mail-mesh-heard';

export class Mailbox implements MailService {
  private readonly index: MailIndex;
  readonly receipts: MailReceipts;
  private flushing: Promise<void> = Promise.resolve();
  /** Unix seconds a neighbour last sent a record here (evidence that the mesh reaches us). */
  private meshHeardAt: number | null = null;
  private meshHeardLoaded: Promise<void> | null = null;

  constructor(private readonly deps: MailboxDeps) {
    this.index = new MailIndex({
      node: deps.node,
      memberIdentity: deps.memberIdentity,
      openMail: (record, me) => this.openMail(record, me),
      address: (name) => this.address(name),
    });
    this.receipts = new MailReceipts(deps.node, { ttlS: MAIL_TTL_S });
    deps.node.on('record', (record, source) => {
      // A new directory entry may complete the keys a waiting mail needs.
      // (A failure leaves the mail waiting; the next directory entry or start tries again.)
      if (record.kind === RecordKind.Directory) void this.flushOutbox().catch(() => undefined);
      if (source !== undefined) this.heardFromMesh();
    });
  }

  /** Note that a neighbour sent a record (persisted at most once a minute). */
  private heardFromMesh(): void {
    const now = this.deps.node.now();
    const previous = this.meshHeardAt;
    this.meshHeardAt = now;
    if (previous === null || now - previous >= 60) void this.deps.node.store.putLocal(MESH_HEARD, String(now)).catch(() => undefined);
  }

  private async lastHeardFromMesh(): Promise<number | null> {
    this.meshHeardLoaded ??= this.deps.node.store.getLocal(MESH_HEARD).then(
      (v) => {
        if (v !== undefined && this.meshHeardAt === null) this.meshHeardAt = Number(v);
      },
      () => undefined,
    );
    await this.meshHeardLoaded;
    return this.meshHeardAt;
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

  /** The SMTP gateway internet mail goes through (gateway/gateway-choice.ts: own, live, nearest). */
  mailGateway(): KnownGateway | undefined {
    const { node } = this.deps;
    return chooseMailGateway(node.directory.gateways(), { self: node.household.id, now: node.now(), ...(this.deps.heardHouseholds ? { heard: this.deps.heardHouseholds() } : {}) });
  }

  /**
   * True when `member@household` is a member the mesh knows. A member of this household whose
   * account was added while the node runs (`citizen user add`) is certified here first, so
   * mail from the internet reaches them before they ever log in.
   */
  async knowsMember(address: string): Promise<boolean> {
    const { node } = this.deps;
    if (node.directory.member(address) !== undefined) return true;
    const at = address.indexOf('@');
    const member = address.slice(0, at);
    if (at < 1 || address.slice(at + 1) !== node.householdName || !isValidName(member) || !(await this.deps.isLocalMember?.(member))) return false;
    await this.deps.memberIdentity(member);
    return node.directory.member(address) !== undefined;
  }

  /**
   * `alice@rose.D` for a mail domain D some gateway of this mesh announced is `alice@rose`
   * (SPEC §3: the same mailbox), so it goes through the mesh rather than out to a smarthost
   * and back. Every other address is returned as it is.
   */
  private meshForm(address: string): string {
    const at = address.lastIndexOf('@');
    const host = address.slice(at + 1);
    if (at < 1 || isValidName(host)) return address;
    for (const { domain } of this.deps.node.directory.gateways()) {
      if (domain === '' || !host.endsWith(`.${domain}`)) continue;
      const household = host.slice(0, -domain.length - 1);
      const member = address.slice(0, at);
      if (isValidName(household) && isValidName(member)) return `${member}@${household}`;
    }
    return address;
  }

  private resolvable(address: string): boolean {
    return isInternetAddress(address) ? this.mailGateway() !== undefined : this.deps.node.directory.member(address) !== undefined;
  }

  private address(member: string): string {
    return `${member}@${this.deps.node.householdName}`;
  }

  async send(user: string, input: MailInput): Promise<{ id: string }> {
    const { node } = this.deps;
    const to = [...new Set(input.to.map((a) => this.meshForm(a.trim().toLowerCase())))];
    if (to.length === 0) throw new AppError('no_recipients', 'a mail needs at least one recipient');
    if (to.length > MAX_MAIL_RECIPIENTS) throw new AppError('too_many_recipients', `a mail can have at most ${MAX_MAIL_RECIPIENTS} recipients`);
    if (utf8(input.subject).length > MAX_SUBJECT_BYTES) throw new AppError('subject_too_long', `the subject is longer than ${MAX_SUBJECT_BYTES} bytes`);
    if (input.body.length > MAX_BODY_CHARS) throw new AppError('body_too_long', `the body is longer than ${MAX_BODY_CHARS} characters; send long texts as a file`);
    let waiting = false;
    for (const address of to) {
      const at = address.indexOf('@');
      const member = address.slice(0, at);
      const household = address.slice(at + 1);
      // An internet address is written as itself (SPEC §3): bob.smith+news@example.org is one,
      // though bob.smith+news could never be a member's name.
      if (at < 1 || household.length === 0 || (isValidName(household) && !isValidName(member))) {
        throw new AppError('bad_address', `"${address}" is not a mail address; write member@household`);
      }
      if (!isValidName(household)) {
        if (!isInternetAddress(address)) throw new AppError('bad_address', `"${address}" is not a mail address`);
        // No gateway known yet (a new mesh, the only one offline): the mail waits for one.
        if (!this.mailGateway()) waiting = true;
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
    // Fitted to the mail layout's byte limits: a subject of 900 CJK characters is 2,700 bytes,
    // and a mail that would not decode would be taken and then never shown.
    const from = utf8(mail.from).length <= MAX_ADDRESS_BYTES ? mail.from : 'unknown@invalid';
    const plaintext = encodeMail({ from, to: mail.to, subject: fitUtf8(mail.subject, MAX_SUBJECT_BYTES), body: mail.body.slice(0, MAX_BODY_CHARS + 1000), ...(mail.authentication ? { authentication: mail.authentication } : {}) });
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

  /**
   * A page of a folder, newest first: at most `limit` mails (DEFAULT_PAGE, at most MAX_PAGE),
   * older than the mail `before`, or only the thread `thread`. Served from the mail index
   * (mail-index.ts): no sealed record is opened here. Sent mails carry their `state`; the first
   * page of Sent also holds every mail still waiting in the outbox (it has no record yet),
   * in date order with the rest.
   */
  async list(user: string, folder: 'inbox' | 'sent', options: MailListOptions = {}): Promise<MailView[]> {
    const { node } = this.deps;
    const limit = Math.max(1, Math.min(MAX_PAGE, options.limit ?? DEFAULT_PAGE));
    const address = this.address(user);
    const page = await this.index.page(user, folder, { limit, ...(options.before !== undefined ? { before: options.before } : {}), ...(options.thread !== undefined ? { thread: options.thread } : {}) });
    const views: MailView[] = [];
    if (folder === 'sent') {
      // Mails still waiting have no record (nor index entry): the first page holds them all.
      if (options.before === undefined) {
        for (const [key, value] of await node.store.listLocal(OUTBOX)) {
          const entry = JSON.parse(value) as OutboxEntry;
          if (entry.user !== user || (options.thread !== undefined && threadKey(entry.subject) !== options.thread)) continue;
          views.push({
            id: key.slice(OUTBOX.length),
            from: address,
            to: entry.to,
            subject: entry.subject,
            body: entry.body,
            date: new Date(entry.created * 1000).toISOString(),
            read: true,
            thread: threadKey(entry.subject),
            size: utf8(entry.body).length,
            state: entry.to.some((a) => !isInternetAddress(a) && !this.resolvable(a)) ? 'waiting for keys' : 'waiting for a mail gateway',
          });
        }
      }
      const reach = { neighbours: this.deps.neighbours?.() ?? 0, heard: await this.lastHeardFromMesh() };
      for (const mail of page) views.push({ ...this.view(mail), state: await this.stateOf(mail, reach) });
      return views.sort(byDate); // stable: the index's own order among mails of one second
    }
    return page.map((mail) => this.view(mail));
  }

  private view(mail: IndexedMail): MailView {
    return {
      id: mail.id,
      from: mail.from,
      to: mail.to,
      subject: mail.subject,
      body: mail.body,
      date: new Date(mail.time * 1000).toISOString(),
      read: mail.read,
      thread: mail.thread,
      size: mail.size,
      ...(mail.authentication ? { authentication: mail.authentication } : {}),
    };
  }

  /**
   * Where a sent mail is, as far as this node can know: `delivered` once every recipient's
   * household acknowledged it (mail-receipts.ts; members of this household have it at once),
   * `delivered to k of n households` on the way there, `carried by N neighbours` once N
   * neighbours were heard passing it on, `sent to the mesh` once a neighbour was in touch
   * after it was written, else `queued`.
   */
  private async stateOf(mail: IndexedMail, reach: { neighbours: number; heard: number | null }): Promise<string> {
    const { node } = this.deps;
    const own = toHex(node.household.id);
    const households = new Map<string, Uint8Array>();
    for (const address of mail.to) {
      if (isInternetAddress(address)) {
        const gateway = this.mailGateway();
        if (gateway && toHex(gateway.household.id) !== own) households.set(toHex(gateway.household.id), gateway.household.id);
        continue;
      }
      const household = node.directory.member(address)?.household;
      if (household && toHex(household.id) !== own) households.set(toHex(household.id), household.id);
    }
    if (households.size === 0) return 'delivered';
    const acked = await this.receipts.acknowledgedBy(fromHex(mail.id), [...households.values()]);
    if (acked.size === households.size) return 'delivered';
    if (acked.size > 0) return `delivered to ${acked.size} of ${households.size} households`;
    const carriers = this.deps.carriers?.(fromHex(mail.id)) ?? 0;
    if (carriers > 0) return `carried by ${carriers} neighbour${carriers === 1 ? '' : 's'}`;
    if (reach.neighbours > 0 || (reach.heard !== null && reach.heard >= mail.time)) return 'sent to the mesh';
    return 'queued';
  }

  /** Load these members' mail indexes in the background (see MailIndex.warm); errors are left for their listing. */
  warm(users: string[]): Promise<void> {
    return users.reduce((chain, user) => chain.then(() => this.index.warm(user).catch(() => undefined)), Promise.resolve());
  }

  /** Mark a mail read for a member (node-local state, not synced). */
  async markRead(user: string, id: string): Promise<void> {
    await this.index.markRead(user, id);
  }

  private isMailGateway(household: Uint8Array): boolean {
    const g = this.deps.node.directory.gateway(household);
    return g !== undefined && (g.services & GatewayService.Smtp) !== 0;
  }

  /** Open a mail record as `me` (an X25519 agreement: the index calls it once per mail and member). */
  private openMail(record: Record, me: Identity): OpenedMail | null {
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
      // Only a household that announced an SMTP gateway can vouch for how internet mail was checked.
      const authentication = content.authentication && author && !('household' in author) && this.isMailGateway(author.id) ? content.authentication : undefined;
      return { content, from, ...(authentication ? { authentication } : {}) };
    } catch {
      return null; // not for this key, or forged: not shown
    }
  }
}

/** Newest first; equal dates keep their order (Array.prototype.sort is stable). */
function byDate(a: MailView, b: MailView): number {
  return a.date < b.date ? 1 : a.date > b.date ? -1 : 0;
}
