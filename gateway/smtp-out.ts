/**
 * SMTP out (issue 7): mesh mail to internet addresses leaves through the smarthost named by
 * `--smtp-relay smtp://[USER:PASS@]HOST:PORT` (or smtps://), with nodemailer. Each message
 * is tried until the smarthost takes it: a 4xx answer or a network failure is retried with
 * exponential backoff (`retryBaseMs` doubling, up to `maxAttempts`); a 5xx answer, or running
 * out of attempts, is a permanent failure reported to `onFailed` (the caller turns it into a
 * bounce inside the mesh, never into mail to an internet sender).
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
}

export interface SmtpRelayDeps {
  /** The smarthost took the message. */
  onSent(mail: OutboundMail): void | Promise<void>;
  /** It never will: `reason` is the smarthost's answer or the last error. */
  onFailed(mail: OutboundMail, reason: string): void | Promise<void>;
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
  /** Queue a message (ignored when one with the same id is queued already). */
  enqueue(mail: OutboundMail): void;
  stop(): Promise<void>;
  stats(): SmtpRelayStats;
}

/** Checks and splits a relay URL. Throws GatewayError SMTP_OPTIONS_INVALID. */
export function parseRelayUrl(url: string): { host: string; port: number; secure: boolean; auth?: { user: string; pass: string } } {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new GatewayError('SMTP_OPTIONS_INVALID', `--smtp-relay must be smtp://[USER:PASS@]HOST:PORT; got "${url}"`, { cause });
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') throw new GatewayError('SMTP_OPTIONS_INVALID', `--smtp-relay must use smtp:// or smtps://; got "${u.protocol}"`);
  if (!u.hostname) throw new GatewayError('SMTP_OPTIONS_INVALID', '--smtp-relay names no host');
  const secure = u.protocol === 'smtps:';
  const port = u.port ? Number(u.port) : secure ? 465 : 587;
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port,
    secure,
    ...(u.username ? { auth: { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } } : {}),
  };
}

interface Job {
  mail: OutboundMail;
  attempts: number;
  timer?: NodeJS.Timeout;
}

class SmtpRelayImpl implements SmtpRelay {
  readonly #transport: Transporter;
  readonly #options: Required<Omit<SmtpRelayOptions, 'url'>>;
  readonly #deps: SmtpRelayDeps;
  readonly #jobs = new Map<string, Job>();
  readonly #counts = { sent: 0, failed: 0, retries: 0 };
  #stopped = false;

  constructor(options: SmtpRelayOptions, deps: SmtpRelayDeps) {
    const target = parseRelayUrl(options.url);
    this.#options = { retryBaseMs: 30_000, retryMaxMs: 3_600_000, maxAttempts: 10, timeoutMs: 30_000, ...options };
    this.#deps = deps;
    this.#transport = createTransport({
      host: target.host,
      port: target.port,
      secure: target.secure,
      ...(target.auth ? { auth: target.auth } : {}),
      // A smarthost on the loopback or LAN may have no certificate; TLS is used when offered.
      tls: { rejectUnauthorized: false },
      connectionTimeout: this.#options.timeoutMs,
      greetingTimeout: this.#options.timeoutMs,
      socketTimeout: this.#options.timeoutMs,
    });
  }

  enqueue(mail: OutboundMail): void {
    if (this.#stopped || this.#jobs.has(mail.id)) return;
    const job: Job = { mail, attempts: 0 };
    this.#jobs.set(mail.id, job);
    void this.#try(job);
  }

  async #try(job: Job): Promise<void> {
    if (this.#stopped) return;
    job.attempts++;
    const { mail } = job;
    try {
      await this.#transport.sendMail({
        envelope: { from: mail.envelopeFrom, to: mail.to },
        from: mail.envelopeFrom,
        to: mail.to,
        subject: mail.subject,
        text: mail.body,
        headers: { 'X-Mesh-Record': mail.id },
      });
    } catch (err) {
      const code = (err as { responseCode?: number }).responseCode;
      const reason = (err as { response?: string }).response ?? (err as Error).message;
      if ((code !== undefined && code >= 500) || job.attempts >= this.#options.maxAttempts) {
        this.#jobs.delete(mail.id);
        this.#counts.failed++;
        this.#deps.log?.(`smtp: giving up on mail ${mail.id.slice(0, 12)}: ${reason}`);
        await this.#deps.onFailed(mail, reason);
        return;
      }
      this.#counts.retries++;
      const delay = Math.min(this.#options.retryMaxMs, this.#options.retryBaseMs * 2 ** (job.attempts - 1)) * (0.75 + (this.#deps.random ?? Math.random)() / 2);
      job.timer = setTimeout(() => void this.#try(job), delay);
      job.timer.unref?.();
      return;
    }
    this.#jobs.delete(mail.id);
    this.#counts.sent++;
    await this.#deps.onSent(mail);
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
