/**
 * The node's HTTP API (SPEC §4) on fastify: login/logout/me, mail, status, /metrics and the
 * first-run set-up, with the LAN defences of http-security.ts on every request; the portal's
 * page and its app routes (chat, files, blog, events, accounts) come from routes-apps.ts.
 *
 * Access rules:
 * - /api/login, /api/logout, /api/setup, /setup*: anyone who passes the Host and origin checks;
 *   wrong logins and set-up tokens are limited per client IP (only failures count: a member who
 *   logs in right is never locked out by it).
 * - /api/me, /api/mail: a session.
 * - /api/status: a session, or a client on this machine (`citizen status` asks without one).
 * - /metrics: no session (Prometheus scrapes it from another machine); `metricsAccess: 'local'`
 *   restricts it to clients on this machine. It holds counters only, no personal data.
 *
 * Sessions live in an HttpOnly, SameSite=Strict cookie (`__Host-` prefixed and Secure when
 * `secureCookies`); a login always starts a new session id and ends the one it replaces.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import cookie from '@fastify/cookie';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { systemClock, type Clock } from '../../mesh/clock.ts';
import { AppError } from '../errors.ts';
import { checkMemberName, checkPassword, type Account, type Accounts } from './accounts.ts';
import { errorReply, refusedByStore, type ErrorBody } from './http-errors.ts';
import type { DiskProblem } from '../../mesh/errors.ts';
import { registerAppRoutes } from './routes-apps.ts';
import {
  absoluteFormHost,
  allowedHostSet,
  CONTENT_SECURITY_POLICY,
  createFailureLimiter,
  crossOriginReason,
  hostLineCount,
  isAllowedHost,
  isLocalClient,
  SECURITY_HEADERS,
  type FailureLimiter,
} from './http-security.ts';
import type { MailInput, NodeServices } from './services.ts';
import type { Sessions } from './sessions.ts';
import { renderSetupClosedPage, renderSetupPage, SETUP_SCRIPT, SETUP_STYLE } from './setup-page.ts';

export interface HttpApiOptions {
  /** Host names the portal answers to besides `localhost` and IP literals, e.g. `rose.local`. */
  allowedHosts: string[];
  /**
   * The port the portal listens on (informational: the Host check compares names only, since a
   * port chooses the socket, not the site; the Origin check compares ports with `Host`).
   */
  portalPort: number;
  /** Mark cookies Secure and `__Host-` (only behind HTTPS). Default false: the portal speaks plain HTTP on the LAN. */
  secureCookies?: boolean;
  /** Failed attempts per client IP on /api/login (and, separately, /api/setup) before a pause until the window ends. Default 10 per 15 minutes. */
  loginRateLimit?: { max: number; timeWindowMs: number };
  /** Largest request body in bytes. Default 128 KiB. */
  bodyLimit?: number;
  /** Who may read /metrics without a session. Default 'any' (any client that passes the Host check). */
  metricsAccess?: 'any' | 'local';
  /**
   * Log requests as JSON lines (method, path without its query, client IP; never bodies,
   * cookies or tokens) to stdout, or to `stream`. Default false: no log.
   */
  logger?: boolean | { level?: 'debug' | 'info' | 'warn' | 'error'; stream?: { write(line: string): void } };
}

/** The one-time first-run token that `npm start` prints in the set-up link. */
export interface SetupToken {
  readonly value: string;
  /** Make the token unusable (after the first admin exists). */
  consume(): void;
}

export interface HttpApiDeps {
  services: NodeServices;
  accounts: Accounts;
  sessions: Sessions;
  /** Read on every request (it may be a getter), so consuming it takes effect at once. */
  setupToken?: SetupToken | null;
  clock?: Clock;
  /** Called after /api/setup created an account (the daemon makes the member's keys). */
  onAccountCreated?: (name: string) => Promise<void> | void;
  /** A request failed on a bug (answered 500): the daemon puts its first line in the node's log. */
  onInternalError?: (error: unknown, request: { method: string; path: string }) => void;
  /** A request failed because a file it wrote (accounts, keys) hit a full or read-only disk. */
  onDiskProblem?: (problem: DiskProblem) => void;
}

/** What `GET /api/me` and a successful login answer. */
export interface MeView {
  user: string;
  address: string;
  household: string;
  admin: boolean;
}

export const DEFAULT_LOGIN_RATE_LIMIT = Object.freeze({ max: 10, timeWindowMs: 15 * 60_000 });
export const DEFAULT_BODY_LIMIT = 128 * 1024;

const LOGIN_SCHEMA = {
  type: 'object',
  required: ['user', 'password'],
  properties: { user: { type: 'string', minLength: 1, maxLength: 64 }, password: { type: 'string', minLength: 1, maxLength: 4096 } },
} as const;

const SETUP_SCHEMA = {
  type: 'object',
  required: ['token', 'user', 'password'],
  properties: { token: { type: 'string', maxLength: 512 }, user: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: 4096 } },
} as const;

const MAIL_SCHEMA = {
  type: 'object',
  required: ['to', 'subject', 'body'],
  properties: {
    to: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 320 } },
    subject: { type: 'string', maxLength: 998 },
    body: { type: 'string', maxLength: 100_000 },
  },
} as const;

const FOLDER_SCHEMA = {
  type: 'object',
  properties: {
    folder: { type: 'string', enum: ['inbox', 'sent'], default: 'inbox' },
    // Paging: `limit` mails (1..500) older than the mail `before`; or one `thread`.
    limit: { type: 'string', pattern: '^[0-9]{1,3}$' },
    before: { type: 'string', pattern: '^[0-9a-f]{32,64}$' },
    thread: { type: 'string', maxLength: 1000 },
  },
} as const;

const NOT_FOUND: ErrorBody = { error: 'not_found', message: 'there is nothing at this address' };
const MISDIRECTED: ErrorBody = { error: 'misdirected_request', message: 'this node does not answer to that host name; use its own address' };

/** The headers of an error answered outside the routes (fastify's onSend hooks do not run there). */
function errorHeaders(): Record<string, string> {
  return { ...SECURITY_HEADERS, 'content-security-policy': CONTENT_SECURITY_POLICY, 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' };
}

/**
 * A request Node's HTTP parser refused (headers over 16 KiB, a malformed request line or
 * header, a request too slow to arrive): the error shape on the raw socket, then close it.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, body]: [number, ErrorBody] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, { error: 'headers_too_large', message: 'the request headers are too large' }]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, { error: 'request_timeout', message: 'the request took too long to arrive' }]
        : [400, { error: 'bad_request', message: 'the request is not valid HTTP' }];
  if (socket.writable) {
    const text = JSON.stringify(body);
    const headers = { ...errorHeaders(), 'content-length': String(Buffer.byteLength(text)), connection: 'close' };
    const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${text}`);
  }
  socket.destroy(error);
}

/** Methods a route may take, in the order a 405's Allow header names them. */
const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** Log lines carry the method, the path without its query (the set-up token) and the client. */
const safeRequestLog = (req: { method?: string; url?: string; ip?: string }) => ({ method: req.method, path: req.url?.split('?')[0], client: req.ip });

/**
 * Build the API. The instance is not listening and not yet ready: the caller may add routes,
 * then `await` it (or `listen`). Tests use `inject`.
 */
export function createHttpApi(options: HttpApiOptions, deps: HttpApiDeps): FastifyInstance & PromiseLike<FastifyInstance> {
  const allowed = allowedHostSet(options.allowedHosts);
  const clock = deps.clock ?? systemClock;
  const secure = options.secureCookies === true;
  const cookieName = secure ? '__Host-citizen_session' : 'citizen_session';
  const cookieAttributes = { path: '/', httpOnly: true, sameSite: 'strict', secure } as const;
  const attempts = options.loginRateLimit ?? DEFAULT_LOGIN_RATE_LIMIT;
  const now = () => clock.now();
  const loginFailures = createFailureLimiter(attempts.max, attempts.timeWindowMs, now);
  const setupFailures = createFailureLimiter(attempts.max, attempts.timeWindowMs, now);
  const passwordFailures = createFailureLimiter(attempts.max, attempts.timeWindowMs, now);
  const household = deps.services.household;
  const accountOf = new WeakMap<FastifyRequest, Account>();
  let setupBusy = false;

  const app = Fastify({
    logger: options.logger
      ? {
          level: (typeof options.logger === 'object' && options.logger.level) || 'info',
          ...(typeof options.logger === 'object' && options.logger.stream ? { stream: options.logger.stream } : {}),
          serializers: { req: safeRequestLog },
          redact: ['req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]'],
        }
      : false,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    trustProxy: false,
    // Requests arriving while the node stops get the error shape (the onRequest hook below), not fastify's own 503 body.
    return503OnClosing: false,
    // What fastify answers before routing (bad percent-encoding, an overlong id) and what Node's
    // parser refuses (oversized headers, garbage) get the error shape and headers too.
    frameworkErrors: (error, request, reply) => {
      const tooLong = (error as { code?: string }).code === 'FST_ERR_MAX_PARAM_LENGTH';
      const [status, body]: [number, ErrorBody] = !isAllowedHost(request.headers.host, allowed)
        ? [421, MISDIRECTED]
        : tooLong
          ? [404, NOT_FOUND] // ids are at most 64 characters: a longer one names nothing
          : [400, { error: 'bad_url', message: 'the address is not valid (broken percent-encoding)' }];
      void (reply as unknown as FastifyReply).code(status).headers(errorHeaders()).send(body);
    },
    clientErrorHandler: answerClientError,
    // Node answers an HTTP/1.1 request without Host itself, with an empty 400: let it through to the Host check instead.
    http: { requireHostHeader: false },
    // Bodies are taken as sent: "to": "a@b" is not quietly turned into ["a@b"].
    ajv: { customOptions: { coerceTypes: false } },
  });

  // An Expect other than 100-continue: Node answers 417 itself, with an empty body, unless told otherwise.
  app.server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const text = JSON.stringify({ error: 'expectation_failed', message: 'this node knows no Expect but 100-continue' });
    response.writeHead(417, { ...errorHeaders(), 'content-length': String(Buffer.byteLength(text)), connection: 'close' });
    response.end(text);
  });

  // Empty JSON bodies (a bare POST /api/logout) are "no body", not a parse error.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') done(null, undefined);
    else parseJson(request, text, done);
  });

  app.setErrorHandler((error, request, reply) => {
    const { status, body, disk } = errorReply(error);
    if (disk) {
      if (!refusedByStore(error)) deps.onDiskProblem?.(disk);
    } else if (status >= 500) {
      request.log.error({ err: error }, 'request failed');
      deps.onInternalError?.(error, { method: request.method, path: (request.raw.url ?? '/').split('?')[0]! });
    }
    void reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.setNotFoundHandler((request, reply) => {
    // A known address asked with a method it does not take: 405 naming the ones it does.
    const path = (request.raw.url ?? '/').split('?')[0]!;
    const allow = path.startsWith('/') ? ROUTE_METHODS.filter((method) => Boolean(app.findRoute({ method, url: path }))) : [];
    if (allow.length > 0) {
      void reply
        .code(405)
        .header('allow', allow.join(', '))
        .type('application/json; charset=utf-8')
        .send({ error: 'method_not_allowed', message: `this address takes ${allow.join(', ')} only` });
      return;
    }
    void reply.code(404).type('application/json; charset=utf-8').send(NOT_FOUND);
  });

  app.addHook('onRequest', async (request, reply) => {
    if (closing) {
      void reply.header('connection', 'close');
      throw new AppError('unavailable', 'the node is stopping; try again when it is back', 503);
    }
    // RFC 9112 §3.2: one Host line exactly; an absolute-form target's host stands instead of it.
    const hostLines = hostLineCount(request.raw.rawHeaders);
    if (hostLines > 1 || (hostLines === 0 && request.raw.httpVersion === '1.1')) throw new AppError('bad_host', 'a request must name exactly one Host', 400);
    const target = absoluteFormHost(request.raw.url);
    if (!isAllowedHost(request.headers.host, allowed) || (target !== null && !isAllowedHost(target, allowed))) {
      throw new AppError(MISDIRECTED.error, MISDIRECTED.message, 421);
    }
    const reason = crossOriginReason(request.method, request.headers);
    if (reason) throw new AppError('forbidden_origin', reason, 403);
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    if (secure) reply.header('strict-transport-security', 'max-age=31536000');
    return payload;
  });

  void app.register(cookie);

  /** Count an attempt, or refuse a client that failed too often lately: 429 with Retry-After, before any password is hashed. */
  const limitedBy = (limiter: FailureLimiter) => async (request: FastifyRequest, reply: FastifyReply) => {
    const waitMs = limiter.attempt(request.ip);
    if (waitMs <= 0) return;
    const minutes = Math.ceil(waitMs / 60_000);
    void reply.header('retry-after', String(Math.ceil(waitMs / 1000)));
    throw new AppError('too_many_requests', `too many wrong attempts from this device; try again in ${minutes} minute${minutes === 1 ? '' : 's'}`, 429);
  };

  const meView = (account: Account): MeView => ({ user: account.name, address: `${account.name}@${household}`, household, admin: account.admin });

  /** The logged-in member's current account, or null (an account removed since login ends its sessions). */
  async function sessionAccount(request: FastifyRequest): Promise<Account | null> {
    const id = request.cookies[cookieName];
    const session = id ? deps.sessions.get(id) : null;
    if (!session) return null;
    const account = await deps.accounts.get(session.user);
    if (!account) deps.sessions.destroyAllFor(session.user);
    return account;
  }

  async function requireSession(request: FastifyRequest): Promise<void> {
    const account = await sessionAccount(request);
    if (!account) throw new AppError('not_logged_in', 'log in first', 401);
    accountOf.set(request, account);
  }

  const member = (request: FastifyRequest): Account => accountOf.get(request)!;

  /** Start a fresh session (a new id every login: a planted id never becomes a live one). */
  function startSession(request: FastifyRequest, reply: FastifyReply, user: string): void {
    const previous = request.cookies[cookieName];
    if (previous) deps.sessions.destroy(previous);
    const session = deps.sessions.create(user);
    const maxAge = Math.max(1, Math.floor((session.expiresAt - clock.now()) / 1000));
    reply.setCookie(cookieName, session.id, { ...cookieAttributes, maxAge });
  }

  /** The live set-up token if `given` is it (compared in constant time), else null. */
  function matchingSetupToken(given: unknown): SetupToken | null {
    const token = deps.setupToken;
    if (!token || typeof given !== 'string') return null;
    return timingSafeEqual(sha256(given), sha256(token.value)) ? token : null;
  }

  void app.register(async (api) => {
    api.post<{ Body: { user: string; password: string } }>(
      '/api/login',
      { onRequest: limitedBy(loginFailures), schema: { body: LOGIN_SCHEMA } },
      async (request, reply) => {
        const account = await deps.accounts.verify(request.body.user.trim().toLowerCase(), request.body.password);
        if (!account) throw new AppError('bad_credentials', 'wrong user name or password', 401);
        loginFailures.succeeded(request.ip);
        startSession(request, reply, account.name);
        return meView(account);
      },
    );

    api.post('/api/logout', async (request, reply) => {
      const id = request.cookies[cookieName];
      if (id) deps.sessions.destroy(id);
      reply.clearCookie(cookieName, cookieAttributes);
      return reply.code(204).send();
    });

    api.get('/api/me', { onRequest: requireSession }, async (request) => meView(member(request)));

    api.get<{ Querystring: { folder: 'inbox' | 'sent'; limit?: string; before?: string; thread?: string } }>(
      '/api/mail',
      { onRequest: requireSession, schema: { querystring: FOLDER_SCHEMA } },
      async (request) => {
        const { folder, limit, before, thread } = request.query;
        const options = { ...(limit !== undefined ? { limit: Number(limit) } : {}), ...(before !== undefined ? { before } : {}), ...(thread !== undefined ? { thread } : {}) };
        return deps.services.mail.list(member(request).name, folder, options);
      },
    );

    api.post<{ Body: MailInput }>('/api/mail', { onRequest: requireSession, schema: { body: MAIL_SCHEMA } }, async (request, reply) => {
      const { to, subject, body } = request.body;
      const { id } = await deps.services.mail.send(member(request).name, { to, subject, body });
      return reply.code(201).send({ id });
    });

    api.get('/api/status', async (request) => {
      if (!isLocalClient(request.socket) && !(await sessionAccount(request))) throw new AppError('not_logged_in', 'log in first', 401);
      return deps.services.status();
    });

    api.get('/metrics', async (request, reply) => {
      if (options.metricsAccess === 'local' && !isLocalClient(request.socket)) {
        throw new AppError('forbidden', 'this node serves its metrics to clients on the same machine only', 403);
      }
      const text = await deps.services.metrics();
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
    });

    api.get<{ Querystring: { token?: unknown } }>('/setup', async (request, reply) => {
      void reply.type('text/html; charset=utf-8');
      if (await deps.accounts.hasAdmin()) return reply.code(409).send(renderSetupClosedPage('This household already has an admin account.'));
      if (!matchingSetupToken(request.query.token)) {
        return reply.code(403).send(renderSetupClosedPage('This set-up link is wrong, or it has been used already.'));
      }
      return reply.send(renderSetupPage(household));
    });
    // Browsers ask for /favicon.ico by themselves (the set-up page names no icon): "none", not a
    // 404 that shows as an error in the console.
    api.get('/favicon.ico', async (_request, reply) => reply.code(204).header('cache-control', 'max-age=86400').send());
    api.get('/setup.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(SETUP_SCRIPT));
    api.get('/setup.css', async (_request, reply) => reply.type('text/css; charset=utf-8').send(SETUP_STYLE));

    api.post<{ Body: { token: string; user: string; password: string } }>(
      '/api/setup',
      { onRequest: limitedBy(setupFailures), schema: { body: SETUP_SCHEMA } },
      async (request, reply) => {
        const { token, user, password } = request.body;
        const open = matchingSetupToken(token);
        if (!open) throw new AppError('bad_setup_token', 'this set-up link is wrong, or it has been used already', 403);
        setupFailures.succeeded(request.ip);
        if (setupBusy) throw new AppError('setup_in_progress', 'the first account is being created already', 409);
        setupBusy = true;
        try {
          if (await deps.accounts.hasAdmin()) {
            open.consume();
            throw new AppError('already_set_up', 'this household already has an admin account', 409);
          }
          checkMemberName(user);
          checkPassword(password);
          const account = await deps.accounts.add(user, password, { admin: true });
          open.consume();
          try {
            await deps.onAccountCreated?.(account.name);
          } catch (error) {
            // The account exists and works; the member's keys are made again on first use.
            request.log.error({ err: error }, 'after creating the first account');
          }
          startSession(request, reply, account.name);
          return reply.code(201).send(meView(account));
        } finally {
          setupBusy = false;
        }
      },
    );

    registerAppRoutes(api, {
      services: deps.services,
      accounts: deps.accounts,
      sessions: deps.sessions,
      requireSession,
      member,
      startSession,
      endSession: (reply) => void reply.clearCookie(cookieName, cookieAttributes),
      passwordAttempts: { onRequest: limitedBy(passwordFailures), succeeded: (request: FastifyRequest) => passwordFailures.succeeded(request.ip) },
      ...(deps.onAccountCreated ? { onAccountCreated: deps.onAccountCreated } : {}),
    });
  });

  return app;
}
