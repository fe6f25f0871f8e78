/**
 * SMTP out (issue 7): mesh mail to internet addresses leaves through the smarthost named by
 * `--smtp-relay smtp://[USER:PASS@]HOST:PORT` (STARTTLS when the smarthost offers it, and
 * required when a password is sent) or `smtps://` (TLS from the first byte), with nodemailer.
 * The smarthost's certificate is verified: against the system's CAs, or against `ca`
 * (`--smtp-relay-ca FILE`) for a smarthost with a private or self-signed certificate.
 *
 * One exception: a smarthost on this machine's loopback (`localhost`, 127.0.0.0/8, ::1) with no
 * `ca` given. Nothing said to it leaves the machine, so TLS protects nothing there; such local
 * mail servers commonly offer STARTTLS with a self-signed ("snakeoil") certificate, and may
 * take AUTH without TLS. STARTTLS is still used when offered, but its certificate is not
 * checked, and a password may go without it. Given a `ca`, a loopback smarthost is verified
 * like any other.
 *
 * Each message is tried until the smarthost takes it: a 4xx answer or a network failure is
 * retried with exponential backoff (`retryBaseMs` doubling, up to `maxAttempts`); a 5xx
 * answer, or running out of attempts, is a permanent failure reported to `onFailed` (the
 * caller turns it into a bounce inside the mesh, never into mail to an internet sender).
 * Every change of a message's retry state goes to `onRetry`, so the caller can keep it across
 * restarts and hand it back to `enqueue`.
 */
import { createTransport, type Transporter } from 'nodemailer';
import { GatewayError } from './errors.ts';

/** One message for the smarthost. */
export interface OutboundMail {
  /** Stable id (the mesh record id): the same mail is never queued twice. */
  id: string;
  /** Envelope sender, `alice@rose.D`. */
  envelopeFrom: string;
  /** Internet recipients. */
  to: string[];
  subject: string;
  body: string;
  /** When the author wrote it (the Date: header); default the time of the try. */
  date?: Date;
}

export interface SmtpRelayOptions {
  /** smtp://[USER:PASS@]HOST:PORT or smtps://... */
  url: string;
  /** First retry after this long (ms). Default 30 s. */
  retryBaseMs?: number;
  /** Longest wait between tries (ms). Default 1 h. */
  retryMaxMs?: number;
  /** Tries before giving up. Default 10. */
  maxAttempts?: number;
  /** One try may take this long (ms). Default 30 s. */
  timeoutMs?: number;
  /** PEM certificate(s) to trust for the smarthost instead of the system's CAs. */
  ca?: string;
  /** Refuse to send unless the connection is TLS. Default: true when the URL has a password. */
  requireTls?: boolean;
}

/** Where a message stands between tries (kept by the caller across restarts). */
export interface RetryState {
  /** Tries made so far. */
  attempts: number;
  /** When the next try is due (ms since the epoch). */
  nextAt: number;
}

export interface SmtpRelayDeps {
  /** The smarthost took the message. */
  onSent(mail: OutboundMail): void | Promise<void>;
  /**
   * It never will: `reason` is the smarthost's answer or the last error. Also called after
   * `onSent` with `mail.to` cut to the recipients the smarthost refused when it took the mail
   * for the others.
   */
  onFailed(mail: OutboundMail, reason: string): void | Promise<void>;
  /** A try failed and another is due at `state.nextAt`. */
  onRetry?(mail: OutboundMail, state: RetryState): void | Promise<void>;
  /** Milliseconds since the epoch. Default Date.now. */
  now?: () => number;
  log?: (line: string) => void;
  /** Uniform in [0, 1) for backoff jitter. */
  random?: () => number;
}

export interface SmtpRelayStats {
  queued: number;
  sent: number;
  failed: number;
  retries: number;
}

export interface SmtpRelay {
  /**
   * Queue a message (ignored when one with the same id is queued already). `resume` is the
   * retry state it had before a restart: the attempts count on, the next try waits until due.
   */
  enqueue(mail: OutboundMail, resume?: RetryState): void;
  stop(): Promise<void>;
  stats(): SmtpRelayStats;
}

/** True for a host name or IP literal that is this machine's loopback (localhost, 127.0.0.0/8, ::1). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = /^(?:::ffff:)?(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.exec(h);
  if (/^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(h)) return true; // ::ffff:127.x.y.z as URL writes it
  return v4 !== null && v4[1] === '127';
}

/** Checks and splits a relay URL. Throws GatewayError SMTP_OPTIONS_INVALID. */
export function parseRelayUrl(url: string): { host: string; port: number; secure: boolean; auth?: { user: string; pass: string } } {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    // The URL may hold a password: show it with the user part hidden.
    const shown = url.replace(/^([a-z+]+:\/\/)[^@/]*@/i, '$1…@');
    throw new GatewayError('SMTP_OPTIONS_INVALID', `--smtp-relay must be smtp://[USER:PASS@]HOST:PORT; got "${shown}"`, { cause });
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') throw new GatewayError('SMTP_OPTIONS_INVALID', `--smtp-relay must use smtp:// or smtps://; got "${u.protocol}"`);
  if (!u.hostname) throw new GatewayError('SMTP_OPTIONS_INVALID', '--smtp-relay names no host');
  const secure = u.protocol === 'smtps:';
  const port = u.port ? Number(u.port) : secure ? 465 : 587;
  if (port === 0) throw new GatewayError('SMTP_OPTIONS_INVALID', '--smtp-relay port 0 is no port: give the smarthost\'s (587, 465, 25)');
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  let auth: { user: string; pass: string } | undefined;
  if (u.username) {
    try {
      auth = { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
    } catch (cause) {
      // URL keeps a stray '%' as it is; say so without repeating the password.
      throw new GatewayError('SMTP_OPTIONS_INVALID', '--smtp-relay has a bad percent-encoding in its user name or password (write % as %25)', { cause });
    }
  }
  return { host, port, secure, ...(auth ? { auth } : {}) };
}

interface Job {
  mail: OutboundMail;
  attempts: number;
  timer?: NodeJS.Timeout;
}

class SmtpRelayImpl implements SmtpRelay {
  readonly #transport: Transporter;
  readonly #options: Required<Omit<SmtpRelayOptions, 'url' | 'ca' | 'requireTls'>>;
  readonly #deps: SmtpRelayDeps;
  readonly #jobs = new Map<string, Job>();
  readonly #counts = { sent: 0, failed: 0, retries: 0 };
  #stopped = false;

  constructor(options: SmtpRelayOptions, deps: SmtpRelayDeps) {
    const target = parseRelayUrl(options.url);
    const { ca, requireTls, ...rest } = options;
    this.#options = { retryBaseMs: 30_000, retryMaxMs: 3_600_000, maxAttempts: 10, timeoutMs: 30_000, ...rest };
    this.#deps = deps;
    // A smarthost on loopback without a CA to check it by: its traffic never leaves this machine (see above).
    const local = ca === undefined && isLoopbackHost(target.host);
    this.#transport = createTransport({
      host: target.host,
      port: target.port,
      secure: target.secure,
      // smtp:// upgrades with STARTTLS whenever the smarthost offers it; a password never goes in clear off this machine.
      requireTLS: !target.secure && (requireTls ?? (target.auth !== undefined && !local)),
      ...(target.auth ? { auth: target.auth } : {}),
      tls: { rejectUnauthorized: !local, minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) },
      connectionTimeout: this.#options.timeoutMs,
      greetingTimeout: this.#options.timeoutMs,
      socketTimeout: this.#options.timeoutMs,
    });
  }

  enqueue(mail: OutboundMail, resume?: RetryState): void {
    if (this.#stopped || this.#jobs.has(mail.id)) return;
    const job: Job = { mail, attempts: resume?.attempts ?? 0 };
    this.#jobs.set(mail.id, job);
    const wait = resume ? Math.max(0, resume.nextAt - this.#now()) : 0;
    if (wait === 0) {
      this.#run(job);
      return;
    }
    job.timer = setTimeout(() => this.#run(job), wait);
    job.timer.unref?.();
  }

  #now(): number {
    return (this.#deps.now ?? Date.now)();
  }

  /** One try, in the background: a caller's hook that throws (its store, a bounce) is logged, never an unhandled rejection that ends the node. */
  #run(job: Job): void {
    this.#try(job).catch((err: unknown) => this.#deps.log?.(`smtp: mail ${job.mail.id.slice(0, 12)}: ${(err as Error).message}`));
  }

  async #try(job: Job): Promise<void> {
    if (this.#stopped) return;
    job.timer = undefined;
    job.attempts++;
    const { mail } = job;
    let info: { rejected?: (string | { address: string })[]; rejectedErrors?: { recipient?: string; response?: string; message: string }[] };
    try {
      info = await this.#transport.sendMail({
        envelope: { from: mail.envelopeFrom, to: mail.to },
        from: mail.envelopeFrom,
        to: mail.to,
        subject: mail.subject,
        text: mail.body,
        // Every try carries the same Date: when the mail was written, not when a retry went out.
        ...(mail.date ? { date: mail.date } : {}),
        // The same mail keeps one Message-ID, so a try repeated after a crash can be recognised.
        messageId: `<${mail.id}@${mail.envelopeFrom.slice(mail.envelopeFrom.lastIndexOf('@') + 1)}>`,
        headers: { 'X-Mesh-Record': mail.id },
      });
    } catch (err) {
      if (this.#stopped) return;
      const e = err as { responseCode?: number; response?: string; code?: string; message: string };
      // A smarthost that will not do TLS, or will not take this gateway's login (a wrong password,
      // or none where one is required: 530), is this gateway's problem, not the mail's: retried
      // like a network failure (the operator may fix it), its 5xx never a bounce at once.
      const tls = e.code === 'ETLS';
      const login = e.code === 'EAUTH' || e.responseCode === 530;
      const code = tls || login ? undefined : e.responseCode;
      const reason = tls
        ? `the smarthost would not speak TLS (${e.response ?? e.message})`
        : login
          ? `the smarthost would not take the gateway's login (${e.response ?? e.message})`
          : (e.response ?? e.message);
      if ((code !== undefined && code >= 500) || job.attempts >= this.#options.maxAttempts) {
        this.#jobs.delete(mail.id);
        this.#counts.failed++;
        this.#deps.log?.(`smtp: giving up on mail ${mail.id.slice(0, 12)}: ${reason}`);
        await this.#deps.onFailed(mail, reason);
        return;
      }
      this.#counts.retries++;
      const delay = Math.min(this.#options.retryMaxMs, this.#options.retryBaseMs * 2 ** (job.attempts - 1)) * (0.75 + (this.#deps.random ?? Math.random)() / 2);
      this.#deps.log?.(`smtp: mail ${mail.id.slice(0, 12)} not taken (try ${job.attempts}): ${reason}; next try in ${Math.round(delay / 1000)} s`);
      job.timer = setTimeout(() => this.#run(job), delay);
      job.timer.unref?.();
      await this.#deps.onRetry?.(mail, { attempts: job.attempts, nextAt: Math.round(this.#now() + delay) });
      return;
    }
    this.#jobs.delete(mail.id);
    this.#counts.sent++;
    await this.#deps.onSent(mail);
    // The smarthost took the mail for some recipients and refused the others: those are told
    // to the sender like any refusal (the mail went, so it is not tried again for them).
    const rejected = (info.rejected ?? []).map((r) => (typeof r === 'string' ? r : r.address));
    if (rejected.length > 0) {
      this.#counts.failed++;
      const reasons = rejected.map((address) => {
        const err = info.rejectedErrors?.find((e) => e.recipient === address);
        return `${address}: ${err ? (err.response ?? err.message) : 'refused'}`;
      });
      this.#deps.log?.(`smtp: mail ${mail.id.slice(0, 12)} refused for ${rejected.length} of ${mail.to.length} recipients`);
      await this.#deps.onFailed({ ...mail, to: rejected }, reasons.join('; '));
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const job of this.#jobs.values()) if (job.timer) clearTimeout(job.timer);
    this.#jobs.clear();
    this.#transport.close();
  }

  stats(): SmtpRelayStats {
    return { queued: this.#jobs.size, ...this.#counts };
  }
}

/** A relay to the smarthost. Throws GatewayError SMTP_OPTIONS_INVALID on a bad URL. */
export function createSmtpRelay(options: SmtpRelayOptions, deps: SmtpRelayDeps): SmtpRelay {
  return new SmtpRelayImpl(options, deps);
}
