/**
 * SPF, DKIM and DMARC of internet mail taken in by the SMTP gateway (issue 7), with mailauth.
 * The results are recorded, never required: a gateway with no DNS (a mesh whose internet
 * line is down, a test) still takes the mail, and the results then say `temperror` or
 * `none`. The whole check is bounded in time so a slow resolver cannot hold an SMTP session.
 */
import { authenticate, type AuthenticateResult, type DNSResolver } from 'mailauth';

/** One method's verdict, as RFC 8601 (Authentication-Results) names them. */
export type AuthResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror' | 'policy';

/** What the gateway found out about where an internet mail came from. */
export interface MailAuthentication {
  spf: AuthResult;
  dkim: AuthResult;
  dmarc: AuthResult;
}

/** The results in a fixed order, for a compact encoding (index = code). */
export const AUTH_RESULTS: readonly AuthResult[] = ['none', 'pass', 'fail', 'softfail', 'neutral', 'temperror', 'permerror', 'policy'];

/** Every method `temperror`: what a gateway records when it could not ask the DNS in time. */
export const UNVERIFIED: MailAuthentication = Object.freeze({ spf: 'temperror', dkim: 'temperror', dmarc: 'temperror' });

export interface MailAuthOptions {
  /** The connecting client's IP address. */
  ip: string;
  /** The name the client gave in EHLO/HELO. */
  helo: string;
  /** The envelope sender (MAIL FROM), '' for a bounce. */
  sender: string;
  /** This gateway's host name (for Authentication-Results). */
  mta: string;
  /** DNS look-ups (mailauth's resolver); default: the system's. */
  resolver?: DNSResolver;
  /** Longest time the checks may take (ms). Default 5 s. */
  timeoutMs?: number;
}

function normalise(result: string | undefined): AuthResult {
  if (result === 'temperr') return 'temperror';
  if (result === 'skipped' || result === undefined) return 'none';
  return (AUTH_RESULTS as readonly string[]).includes(result) ? (result as AuthResult) : 'permerror';
}

/**
 * One DKIM signature's verdict. mailauth calls a body that no longer matches its signed hash
 * "neutral"; RFC 6376 §3.7 makes it a PERMFAIL, which RFC 8601 writes as `fail`.
 */
function dkimVerdict(status: { result?: string; comment?: string | false } | undefined): AuthResult {
  if (status?.comment === 'body hash did not verify') return 'fail';
  return normalise(status?.result);
}

/** The best DKIM verdict among the signatures: one passing signature is enough. */
function dkimOf(result: AuthenticateResult): AuthResult {
  const verdicts = (result.dkim?.results ?? []).map((r) => dkimVerdict(r.status));
  if (verdicts.length === 0) return 'none';
  if (verdicts.includes('pass')) return 'pass';
  return verdicts.find((v) => v === 'temperror') ?? verdicts[0]!;
}

/**
 * Check SPF (for the client IP and envelope sender), DKIM signatures and the From domain's
 * DMARC policy. Never throws: a failure of the checks themselves, or running out of time,
 * gives `temperror` for every method.
 */
export async function authenticateMail(raw: Uint8Array, options: MailAuthOptions): Promise<MailAuthentication> {
  const timeoutMs = options.timeoutMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<MailAuthentication>((resolve) => {
    timer = setTimeout(() => resolve(UNVERIFIED), timeoutMs);
  });
  const checked = authenticate(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), {
    ip: options.ip,
    helo: options.helo,
    sender: options.sender,
    mta: options.mta,
    disableArc: true,
    disableBimi: true,
    ...(options.resolver ? { resolver: options.resolver } : {}),
  }).then(
    (result): MailAuthentication => ({
      spf: result.spf ? normalise(result.spf.status?.result) : 'none',
      dkim: dkimOf(result),
      dmarc: result.dmarc ? normalise(result.dmarc.status?.result) : 'none',
    }),
    (): MailAuthentication => UNVERIFIED,
  );
  try {
    return await Promise.race([checked, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
