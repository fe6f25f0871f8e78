/**
 * SMTP in (issue 7): internet mail for `--mail-domain D` enters the mesh here. `alice@rose.D`
 * is mesh member `alice@rose`. The gateway is never an open relay:
 *
 *   RCPT TO another domain              550 5.7.1 relaying denied
 *   RCPT TO an unknown member of D      550 5.1.1 no such member
 *   more than `maxRecipients` RCPTs     452 4.5.3 too many recipients
 *   a message over `maxBytes`           552 5.3.4 (SIZE is announced in EHLO)
 *   MIME that cannot be parsed          550 5.6.0
 *   a client idle for `idleTimeoutMs`   disconnected (slow-loris)
 *
 * Each message is parsed (mailparser: subject, text, attachments named in the body), its SPF,
 * DKIM and DMARC results are recorded where the DNS allows (gateway/mail-auth.ts; never
 * required, `temperror` without DNS), and it is handed to `deliver`, which seals it to the recipients at once, so the gateway keeps no
 * plaintext once the message is in the mesh. Every refusal is counted by reason.
 */
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { DNSResolver } from 'mailauth';
import { isValidMailDomain } from '../mesh/directory.ts';
import { GatewayError } from './errors.ts';
import { authenticateMail, type MailAuthentication } from './mail-auth.ts';

/** One internet mail on its way into the mesh. */
export interface InboundMail {
  /** The internet sender as the message names it (From:, else the envelope sender). */
  from: string;
  /** The envelope sender (MAIL FROM), '' for a bounce. */
  envelopeFrom: string;
  /** Mesh addresses `member@household`. */
  to: string[];
  subject: string;
  body: string;
  /** SPF, DKIM and DMARC as this gateway found them (a record of fact, not a filter). */
  authentication: MailAuthentication;
}

export interface SmtpInOptions {
  host: string;
  port: number;
  /** The community's mail domain D. */
  domain: string;
  /** Largest message in bytes. Default 1 MiB (mail travels a mesh; big files go as files). */
  maxBytes?: number;
  /** Recipients per message. Default 16. */
  maxRecipients?: number;
  /** Concurrent clients. Default 32. */
  maxClients?: number;
  /** A client silent this long is disconnected. Default 60 s. */
  idleTimeoutMs?: number;
  /** Longest body carried into the mesh (characters); the rest is cut with a note. Default 12 000. */
  maxBodyChars?: number;
  /** Longest time the SPF/DKIM/DMARC checks of one message may take (ms). Default 5 s. */
  authTimeoutMs?: number;
}

export interface SmtpInDeps {
  /** True when `member@household` is a known member of the mesh. */
  isMember(address: string): boolean | Promise<boolean>;
  /** Seal and publish one mail into the mesh. */
  deliver(mail: InboundMail): Promise<void>;
  /** DNS look-ups for SPF/DKIM/DMARC (mailauth's resolver); default: the system's. */
  resolver?: DNSResolver;
  log?: (line: string) => void;
}

export interface SmtpInStats {
  accepted: number;
  /** Refusals by reason: relay, unknown-recipient, too-many-recipients, size, malformed, deliver-failed, lookup-failed. */
  refused: { [reason: string]: number };
}

export interface SmtpIn {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Where it listens (the real port when asked for port 0); undefined while stopped. */
  address(): { host: string; port: number } | undefined;
  stats(): SmtpInStats;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

/** `alice@rose.D` → `alice@rose`, or null when the address is not in domain D. */
export function meshAddressOf(address: string, domain: string): string | null {
  const lower = address.trim().toLowerCase();
  const at = lower.lastIndexOf('@');
  if (at < 1) return null;
  const suffix = `.${domain}`;
  const host = lower.slice(at + 1);
  if (!host.endsWith(suffix)) return null;
  const household = host.slice(0, -suffix.length);
  const member = lower.slice(0, at);
  return /^[a-z0-9-]{1,32}$/.test(household) && /^[a-z0-9-]{1,32}$/.test(member) ? `${member}@${household}` : null;
}

/** True when the address's domain is D or under it. */
function inDomain(address: string, domain: string): boolean {
  const host = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  return host === domain || host.endsWith(`.${domain}`);
}

const ENTITIES: { [name: string]: string } = { nbsp: ' ', lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' };

/** A character reference's character, or the reference itself when it names none. */
function entity(whole: string, name: string): string {
  const code = /^#x([0-9a-f]{1,6})$/i.exec(name)?.[1] ?? /^#([0-9]{1,7})$/.exec(name)?.[1];
  if (code === undefined) return ENTITIES[name.toLowerCase()] ?? whole;
  const n = name[1] === 'x' || name[1] === 'X' ? parseInt(code, 16) : Number(code);
  return n > 0 && n <= 0x10ffff && (n < 0xd800 || n > 0xdfff) ? String.fromCodePoint(n) : whole;
}

/** An element dropped with its content, right after a '<' (sticky; the lookahead is the regex's `\b`). */
const HIDDEN_OPEN = /(script|style|head|title)(?![A-Za-z0-9_])/iy;

/**
 * Drops each `<script|style|head|title ...>…</same>` (as the regex
 * `/<(script|style|head|title)\b[^>]*>[\s\S]*?<\/\1\s*>/gi` would replace it with ' '), in
 * linear time: the regex rescans to the end of the text for every opening tag that is never
 * closed, which hostile mail repeats to hold the gateway's event loop for minutes. The
 * closing tags are found once; each opening tag takes the first one after it.
 */
function dropHiddenElements(html: string): string {
  const closes = new Map<string, { starts: number[]; ends: number[]; next: number }>();
  for (const name of ['script', 'style', 'head', 'title']) {
    const starts: number[] = [];
    const ends: number[] = [];
    for (const m of html.matchAll(new RegExp(`<\\/${name}\\s*>`, 'gi'))) {
      starts.push(m.index);
      ends.push(m.index + m[0].length);
    }
    closes.set(name, { starts, ends, next: 0 });
  }
  let out = '';
  let copied = 0;
  for (let at = html.indexOf('<'); at >= 0; at = html.indexOf('<', at + 1)) {
    HIDDEN_OPEN.lastIndex = at + 1;
    const name = HIDDEN_OPEN.exec(html)?.[1]?.toLowerCase();
    if (!name) continue;
    const openEnd = html.indexOf('>', at + 1 + name.length);
    if (openEnd < 0) break; // no '>' left: no opening tag can complete
    const close = closes.get(name)!;
    while (close.next < close.starts.length && close.starts[close.next]! <= openEnd) close.next++;
    if (close.next === close.starts.length) continue; // never closed: left to the tag rule
    out += `${html.slice(copied, at)} `;
    copied = close.ends[close.next]!;
    at = copied - 1;
  }
  return out + html.slice(copied);
}

/** `<!--…-->` → ' ', as `/<!--[\s\S]*?-->/g` would, in linear time. */
function dropComments(html: string): string {
  let out = '';
  let copied = 0;
  for (let at = html.indexOf('<!--'); at >= 0; at = html.indexOf('<!--', copied)) {
    const end = html.indexOf('-->', at + 4);
    if (end < 0) break; // an unclosed comment: no later one closes either
    out += `${html.slice(copied, at)} `;
    copied = end + 3;
  }
  return out + html.slice(copied);
}

/**
 * The text of an HTML part, for mail that has no text part mailparser turned it into (it does
 * not for an HTML-only multipart/alternative): no scripts, styles or tags, paragraphs kept.
 * Linear in the length of the HTML, whatever it holds (see dropHiddenElements).
 */
export function textOfHtml(html: string): string {
  const blocks = dropComments(dropHiddenElements(html))
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|h[1-6]|li|tr|table|blockquote|pre)\s*>/gi, '\n\n');
  // After the last '>' no tag can end: the tag rule runs only up to it (a '<' with no '>'
  // after it would otherwise be scanned to the end once for every '<').
  const lastTagEnd = blocks.lastIndexOf('>') + 1;
  return (blocks.slice(0, lastTagEnd).replace(/<[^>]*>/g, ' ') + blocks.slice(lastTagEnd))
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, entity)
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function bodyOf(parsed: ParsedMail, maxChars: number): string {
  let body = (parsed.text ?? (typeof parsed.html === 'string' ? textOfHtml(parsed.html) : '')).trim();
  const notes = (parsed.attachments ?? []).map((a) => `[attachment not carried into the mesh: ${a.filename ?? 'unnamed'} (${a.contentType}, ${a.size} bytes)]`);
  if (body.length > maxChars) body = `${body.slice(0, maxChars)}\n[cut: the message was longer than ${maxChars} characters]`;
  return notes.length ? `${body}\n\n${notes.join('\n')}` : body;
}

class SmtpInImpl implements SmtpIn {
  readonly #options: Required<SmtpInOptions>;
  readonly #deps: SmtpInDeps;
  readonly #refused = new Map<string, number>();
  #accepted = 0;
  #server: SMTPServer | undefined;
  #address: { host: string; port: number } | undefined;

  constructor(options: SmtpInOptions, deps: SmtpInDeps) {
    if (!isValidMailDomain(options.domain)) throw new GatewayError('SMTP_OPTIONS_INVALID', `"${options.domain}" is not a mail domain`);
    this.#options = {
      maxBytes: 1024 * 1024,
      maxRecipients: 16,
      maxClients: 32,
      idleTimeoutMs: 60_000,
      maxBodyChars: 12_000,
      authTimeoutMs: 5000,
      ...options,
    };
    this.#deps = deps;
  }

  #refuse(reason: string, code: number, message: string): Error {
    this.#refused.set(reason, (this.#refused.get(reason) ?? 0) + 1);
    return smtpError(code, message);
  }

  async start(): Promise<void> {
    if (this.#server) return;
    const o = this.#options;
    const server = new SMTPServer({
      name: o.domain,
      banner: `Citizen Cloud mail gateway for ${o.domain}`,
      size: o.maxBytes,
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      maxClients: o.maxClients,
      socketTimeout: o.idleTimeoutMs,
      closeTimeout: 1000,
      logger: false,
      onRcptTo: (address, session, callback) => {
        void this.#checkRecipient(address, session.envelope.rcptTo.length).then(
          (refusal) => callback(refusal),
          (err: Error) => {
            this.#deps.log?.(`smtp: cannot look up ${address.address}: ${err.message}`);
            callback(this.#refuse('lookup-failed', 451, '4.3.0 the member list cannot be read now; try again later'));
          },
        );
      },
      onData: (stream, session, callback) => {
        void this.#receive(stream, session).then(
          () => callback(),
          (err: Error) => callback(err),
        );
      },
    });
    // Errors while listening are the start's to report (thrown below), not logged twice.
    let listening = false;
    server.on('error', (err) => {
      if (listening) this.#deps.log?.(`smtp: ${err.message}`);
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new GatewayError('SMTP_LISTEN_FAILED', `cannot listen on ${o.host}:${o.port}: ${err.message}`, { cause: err }));
      server.server.once('error', onError);
      server.listen(o.port, o.host, () => {
        listening = true;
        server.server.off('error', onError);
        resolve();
      });
    });
    this.#server = server;
    const address = server.server.address() as AddressInfo;
    this.#address = { host: o.host, port: address.port };
  }

  async #checkRecipient(address: SMTPServerAddress, already: number): Promise<Error | null> {
    const mesh = meshAddressOf(address.address, this.#options.domain);
    if (!mesh && inDomain(address.address, this.#options.domain)) {
      // Our domain, but no member@household there (alice.smith@rose.D, alice@D): no such user, not relaying.
      return this.#refuse('unknown-recipient', 550, `5.1.1 <${address.address}>: no such member in the mesh; addresses here are member@household.${this.#options.domain}`);
    }
    if (!mesh) return this.#refuse('relay', 550, `5.7.1 <${address.address}>: relaying denied; this gateway only takes mail for *.${this.#options.domain}`);
    if (!(await this.#deps.isMember(mesh))) return this.#refuse('unknown-recipient', 550, `5.1.1 <${address.address}>: no such member in the mesh`);
    if (already >= this.#options.maxRecipients) return this.#refuse('too-many-recipients', 452, '4.5.3 too many recipients');
    return null;
  }

  async #receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<void> {
    const { mailFrom, rcptTo } = session.envelope;
    // Collect at most maxBytes; past that the rest is read and thrown away, never held.
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= this.#options.maxBytes) chunks.push(chunk);
    }
    if (stream.sizeExceeded || size > this.#options.maxBytes) {
      throw this.#refuse('size', 552, `5.3.4 message exceeds the fixed maximum size of ${this.#options.maxBytes} bytes`);
    }
    const raw = Buffer.concat(chunks);
    let parsed: ParsedMail;
    try {
      parsed = await simpleParser(raw, { skipHtmlToText: false, maxHtmlLengthToParse: this.#options.maxBytes });
    } catch {
      throw this.#refuse('malformed', 550, '5.6.0 the message could not be parsed');
    }
    const to = rcptTo.map((r) => meshAddressOf(r.address, this.#options.domain)).filter((a): a is string => a !== null);
    const envelopeFrom = mailFrom ? mailFrom.address : '';
    const from = parsed.from?.value[0]?.address ?? envelopeFrom;
    const authentication = await authenticateMail(raw, {
      ip: session.remoteAddress,
      helo: session.hostNameAppearsAs ?? '',
      sender: envelopeFrom,
      mta: this.#options.domain,
      timeoutMs: this.#options.authTimeoutMs,
      ...(this.#deps.resolver ? { resolver: this.#deps.resolver } : {}),
    });
    const mail = { from: from || 'unknown@invalid', envelopeFrom, to: [...new Set(to)], subject: (parsed.subject ?? '').slice(0, 900), body: bodyOf(parsed, this.#options.maxBodyChars), authentication };
    try {
      await this.#deps.deliver(mail);
    } catch (err) {
      this.#deps.log?.(`smtp: a message could not be delivered into the mesh: ${(err as Error).message}`);
      throw this.#refuse('deliver-failed', 451, '4.3.0 the mesh could not take the message now; try again later');
    }
    this.#accepted++;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    this.#address = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  address(): { host: string; port: number } | undefined {
    return this.#address ? { ...this.#address } : undefined;
  }

  stats(): SmtpInStats {
    return { accepted: this.#accepted, refused: Object.fromEntries(this.#refused) };
  }
}

/** An SMTP server for the mail domain (stopped until `start()`). Throws GatewayError SMTP_OPTIONS_INVALID. */
export function createSmtpIn(options: SmtpInOptions, deps: SmtpInDeps): SmtpIn {
  return new SmtpInImpl(options, deps);
}
