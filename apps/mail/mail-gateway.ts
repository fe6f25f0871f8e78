/**
 * The mesh side of an SMTP gateway household (issue 7):
 *
 *  - in: internet mail taken by gateway/smtp-in.ts is sealed at once to the mesh recipients
 *    and signed by this household (Mailbox.deliverAsHousehold), so no plaintext stays here;
 *    its SPF/DKIM/DMARC results travel inside the sealed mail;
 *  - out: mail sealed to this household's key with internet recipients is opened here and
 *    handed to the smarthost (gateway/smtp-out.ts) with the envelope sender
 *    `member@household.DOMAIN` of its authenticated author (the record's signer, never what
 *    the text claims). A permanent failure comes back to the author as a mesh mail (a bounce).
 *
 * What has been handed over is remembered in the node-local store (LevelDB, in the data
 * dir) under `smtp-out/<record id>`: `sent`, `failed`, or `queued` with the retry state
 * (`{"attempts":N,"nextAt":MS}`). A restart resumes each queued mail where its backoff stood,
 * and sends nothing twice. No plaintext is kept: a resumed mail is opened again from its
 * sealed record.
 */
import { toHex } from '../../mesh/bytes.ts';
import { keyId } from '../../mesh/identity.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { RecordKind, type Record } from '../../mesh/record.ts';
import { open } from '../../mesh/seal.ts';
import type { InboundMail } from '../../gateway/smtp-in.ts';
import type { OutboundMail, RetryState } from '../../gateway/smtp-out.ts';
import { decodeMail } from './mail-codec.ts';
import { isInternetAddress, type Mailbox } from './mailbox.ts';

const STATE = 'smtp-out/';

export interface MailGatewayDeps {
  node: MeshNode;
  mailbox: Mailbox;
  /** The community's mail domain D. */
  domain: string;
  /** Where outgoing internet mail is queued; absent when this node has no --smtp-relay. */
  relay?: { enqueue(mail: OutboundMail, resume?: RetryState): void };
  log?: (line: string) => void;
}

/** The retry state kept for a queued mail, or undefined for a bare (older) `queued`. */
function retryStateOf(value: string | undefined): RetryState | undefined {
  if (!value?.startsWith('{')) return undefined;
  try {
    const { attempts, nextAt } = JSON.parse(value) as Partial<RetryState>;
    return Number.isSafeInteger(attempts) && Number.isSafeInteger(nextAt) && attempts! >= 0 ? { attempts: attempts!, nextAt: nextAt! } : undefined;
  } catch {
    return undefined;
  }
}

export class MailGateway {
  #stopped = false;
  /** Mails handed to the relay by this run: a record seen twice (start scan and live) goes once. */
  readonly #handed = new Set<string>();
  readonly #onRecord = (record: Record): void => {
    if (record.kind === RecordKind.Mail) void this.#outgoing(record).catch((err: unknown) => this.deps.log?.(`smtp: ${(err as Error).message}`));
  };

  constructor(private readonly deps: MailGatewayDeps) {}

  /**
   * Resume what was queued before a restart and take new mail as it arrives. Without a relay
   * (a gateway that only takes mail in), internet mail sealed to it is bounced to its author
   * rather than kept in silence.
   */
  async start(): Promise<void> {
    this.deps.node.on('record', this.#onRecord);
    const mine = await this.deps.node.store.byRecipient(keyId(this.deps.node.household.agreementKey));
    // One mail that cannot be handled (logged) does not keep the node from starting.
    for (const record of mine) if (record.kind === RecordKind.Mail) await this.#outgoing(record).catch((err: unknown) => this.deps.log?.(`smtp: ${(err as Error).message}`));
  }

  stop(): void {
    this.#stopped = true;
    this.deps.node.off('record', this.#onRecord);
  }

  /** True when `member@household` is a member the mesh knows (for RCPT TO), one added to this household while the node runs too. */
  isMember = (address: string): Promise<boolean> => this.deps.mailbox.knowsMember(address);

  /** Seal an internet mail to its mesh recipients at once. */
  deliver = async (mail: InboundMail): Promise<void> => {
    await this.deps.mailbox.deliverAsHousehold({ from: mail.from, to: mail.to, subject: mail.subject, body: mail.body, authentication: mail.authentication });
  };

  async #outgoing(record: Record): Promise<void> {
    const { relay } = this.deps;
    if (this.#stopped) return;
    const id = toHex(record.id);
    // Seen twice at once (the start scan and a live arrival): handled once. The id stays here
    // only while its mail is with the relay, so this set does not grow with passing mail.
    if (this.#handed.has(id)) return;
    this.#handed.add(id);
    let handed = false;
    try {
      handed = await this.#handOver(record, id, relay);
    } finally {
      if (!handed) this.#handed.delete(id);
    }
  }

  /** Queue the mail at the relay if it is an internet mail for this gateway not sent yet. */
  async #handOver(record: Record, id: string, relay: MailGatewayDeps['relay']): Promise<boolean> {
    const { node } = this.deps;
    const state = await node.store.getLocal(`${STATE}${id}`);
    if (state === 'sent' || state === 'failed') return false;
    let content;
    try {
      content = decodeMail(open(record.payload, node.household, record.author));
    } catch {
      return false; // not sealed to this household, or not readable
    }
    const internet = content.to.filter(isInternetAddress);
    if (internet.length === 0) return false;
    const author = node.directory.ownerOfSigningKey(record.author);
    if (!author || !('household' in author)) return false; // only members send internet mail
    const mail: OutboundMail = {
      id,
      envelopeFrom: `${author.name}@${author.household.name}.${this.deps.domain}`,
      to: internet,
      subject: content.subject,
      body: content.body,
      date: new Date(record.time * 1000),
    };
    if (!relay) {
      // Chosen as the way out although it has no smarthost: the author hears so, once.
      if (state === undefined) await this.failed(mail, `the mail gateway of ${node.householdName} takes internet mail in but has no smarthost to send it out (no --smtp-relay)`);
      return false;
    }
    const resume = retryStateOf(state);
    if (state === undefined) await node.store.putLocal(`${STATE}${id}`, 'queued', { sync: true });
    relay.enqueue(mail, resume);
    return true;
  }

  /** A try failed: keep where the backoff stands, for a restart. */
  retrying = async (mail: OutboundMail, state: RetryState): Promise<void> => {
    await this.deps.node.store.putLocal(`${STATE}${mail.id}`, JSON.stringify(state));
  };

  /** The smarthost took a mail. */
  sent = async (mail: OutboundMail): Promise<void> => {
    await this.deps.node.store.putLocal(`${STATE}${mail.id}`, 'sent', { sync: true });
    this.#handed.delete(mail.id); // the stored state answers from now on
  };

  /**
   * The smarthost will never take a mail (or took it for some recipients only: `mail.to` are
   * the others, and its state stays `sent`): bounce it to its author inside the mesh.
   */
  failed = async (mail: OutboundMail, reason: string): Promise<void> => {
    const { node, domain } = this.deps;
    const author = mail.envelopeFrom.replace(new RegExp(`\\.${domain.replaceAll('.', '\\.')}$`), '');
    await this.deps.mailbox.deliverAsHousehold({
      from: `mailer-daemon@${node.householdName}`,
      to: [author],
      subject: `Undeliverable: ${mail.subject}`,
      body: [
        `Your mail to ${mail.to.join(', ')} could not be delivered by the mail gateway of ${node.householdName}.`,
        '',
        `The mail server answered: ${reason}`,
        '',
        '--- your mail ---',
        mail.body,
      ].join('\n'),
    });
    // Only once the bounce is written: a bounce that failed is written at the next start instead of never.
    if ((await node.store.getLocal(`${STATE}${mail.id}`)) !== 'sent') await node.store.putLocal(`${STATE}${mail.id}`, 'failed', { sync: true });
    this.#handed.delete(mail.id);
  };
}
