/**
 * The portal's defences for a shared LAN, as pure functions the HTTP API's hooks call:
 *
 * - Host allowlist (DNS rebinding): a page on evil.example whose name is re-pointed at the Pi
 *   still sends `Host: evil.example`, so only the portal's own names pass — the configured
 *   names, `localhost` and IP literals (a rebinding attack needs a name the attacker controls,
 *   never an IP literal). Ports are not compared: a port picks the socket, not the site.
 * - Cross-site request forgery: a state-changing request must come from the portal's own
 *   origin. `Origin` (when sent, as browsers do on every POST) must name exactly the host and
 *   port of `Host`; `Sec-Fetch-Site: cross-site` or `same-site` (another port or subdomain) is
 *   refused. Requests with neither header (curl, the CLI) are not from a browser and pass.
 * - Response headers that stop sniffing, framing and referrer leaks, and a CSP.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** Methods that change state and so get the origin check. */
export const STATE_CHANGING_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The CSP for everything the portal serves: own-origin resources only, no inline script. */
export const CONTENT_SECURITY_POLICY = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/** Headers every answer carries (a route may set its own CSP or Cache-Control first). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
});

const HOST = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s/@]+))(?::(\d{1,5}))?$/;

/** The host name of a `Host` header ("name", "name:port", "[v6]:port"), lowercased, or null if malformed. */
export function hostnameOf(host: string | undefined): string | null {
  const match = typeof host === 'string' ? HOST.exec(host) : null;
  if (!match) return null;
  if (match[1] !== undefined) return isIPv6(match[1]) ? match[1].toLowerCase() : null;
  return match[2]!.toLowerCase().replace(/\.$/, '');
}

/** Normalise configured host names the way {@link hostnameOf} normalises requests. */
export function allowedHostSet(names: readonly string[]): ReadonlySet<string> {
  return new Set(names.map((n) => hostnameOf(n.trim())).filter((n): n is string => n !== null && n !== ''));
}

/** Whether a `Host` header names the portal: a configured name, `localhost` or an IP literal (any port). */
export function isAllowedHost(host: string | undefined, allowed: ReadonlySet<string>): boolean {
  const name = hostnameOf(host);
  if (name === null || name === '') return false;
  return name === 'localhost' || isIPv4(name) || isIPv6(name) || allowed.has(name);
}

/** Whether `origin` (an Origin header) is exactly the origin whose `Host` header is `host` (scheme's default port allowed). */
export function isSameOrigin(origin: string, host: string): boolean {
  try {
    const from = new URL(origin);
    if (from.protocol !== 'http:' && from.protocol !== 'https:') return false;
    const self = new URL(`${from.protocol}//${host}`);
    return from.host === self.host;
  } catch {
    return false; // "null", garbage, or a Host URL cannot hold
  }
}

/**
 * Why a request must be refused as cross-origin, or null if it may proceed. Only
 * state-changing methods are checked: reading is already fenced by the same-origin policy.
 */
export function crossOriginReason(method: string, headers: Record<string, string | string[] | undefined>): string | null {
  if (!STATE_CHANGING_METHODS.has(method.toUpperCase())) return null;
  const site = headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return `a ${site} request may not change anything here`;
  const origin = headers.origin;
  if (origin === undefined) return null;
  const host = headers.host;
  if (typeof origin !== 'string' || typeof host !== 'string' || !isSameOrigin(origin, host)) {
    return 'requests that change something must come from the portal itself';
  }
  return null;
}

/** Whether the client runs on this machine: a loopback address, or the very address it connected to. */
export function isLocalClient(socket: { remoteAddress?: string | undefined; localAddress?: string | undefined }): boolean {
  const remote = socket.remoteAddress?.replace(/^::ffff:/, '');
  if (!remote) return false;
  return remote === '::1' || remote.startsWith('127.') || remote === socket.localAddress?.replace(/^::ffff:/, '');
}

/**
 * Wrong guesses per client IP (login, set-up token, current password): after `max` failures
 * within `windowMs` of the first, the client is refused until that window ends. Only failures
 * count — a member who logs in right, however often, is never locked out — and a success does
 * not wipe earlier failures (an attacker's own valid account buys no more guesses at others').
 *
 * An attempt counts from the moment it arrives and is taken back when it turns out right, so a
 * burst of guesses sent at once is held to `max` like guesses sent one after another.
 */
export interface FailureLimiter {
  /** Start an attempt of `client`: 0 if it may go on (it now counts), else milliseconds until it may try again. */
  attempt(client: string): number;
  /** The attempt was right: it does not count. */
  succeeded(client: string): void;
}

export function createFailureLimiter(max: number, windowMs: number, now: () => number): FailureLimiter {
  const table = new Map<string, { count: number; resetAt: number }>();
  const live = (client: string, t: number) => {
    const entry = table.get(client);
    if (entry && t >= entry.resetAt) table.delete(client);
    return entry && t < entry.resetAt ? entry : null;
  };
  return {
    attempt(client) {
      const t = now();
      const entry = live(client, t);
      if (entry && entry.count >= max) return entry.resetAt - t;
      if (entry) entry.count++;
      else {
        if (table.size >= 10_000) for (const [key, e] of table) if (t >= e.resetAt) table.delete(key);
        table.set(client, { count: 1, resetAt: t + windowMs });
      }
      return 0;
    },
    succeeded(client) {
      const entry = live(client, now());
      if (entry && entry.count > 0) entry.count--;
    },
  };
}

/** How many `Host` lines a request carried (`rawHeaders` alternates names and values). */
export function hostLineCount(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === 'host') count++;
  return count;
}

/**
 * The host a request names in an absolute-form target (`GET http://name:port/path`), which a
 * server must use instead of `Host` (RFC 9112 §3.2.2); null for the usual `/path` form.
 */
export function absoluteFormHost(target: string | undefined): string | null {
  if (!target || target.startsWith('/') || !/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return null;
  try {
    return new URL(target).host;
  } catch {
    return '';
  }
}
