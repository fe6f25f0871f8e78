/**
 * The portal's app routes (issue 6): the page and its assets, chat, files, blog, live
 * updates (server-sent events), the directory for address completion, read state of mail,
 * and account management. http-api.ts registers them behind its LAN defences (Host check,
 * origin check, security headers); every /api route here needs a session.
 *
 * SPEC §4 routes: GET/POST /api/chat/rooms, GET/POST /api/chat/rooms/:id/messages,
 * GET/POST /api/files, GET /api/files/:id, GET/POST /api/blog, GET /api/blog/:id.
 * Added: GET /api/session, GET /api/events, GET /api/directory, POST /api/mail/:id/read,
 * POST /api/blog/:id/comments, GET/POST /api/accounts (admin), POST /api/me/password,
 * POST /api/logout-all.
 */
import { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import { contentDisposition } from '../files/file-name.ts';
import { loadPortalAssets } from '../portal/static.ts';
import { checkMemberName, checkPassword, type Account, type Accounts } from './accounts.ts';
import { CONTENT_SECURITY_POLICY, SECURITY_HEADERS } from './http-security.ts';
import type { NodeServices } from './services.ts';
import type { Sessions } from './sessions.ts';

export interface AppRoutesContext {
  services: NodeServices;
  accounts: Accounts;
  sessions: Sessions;
  requireSession(request: FastifyRequest): Promise<void>;
  member(request: FastifyRequest): Account;
  startSession(request: FastifyRequest, reply: FastifyReply, user: string): void;
  endSession(reply: FastifyReply): void;
  /** The limit on wrong current passwords: a hook that counts an attempt (or refuses a client over the limit), and taking back a right one. */
  passwordAttempts: { onRequest(request: FastifyRequest, reply: FastifyReply): Promise<void>; succeeded(request: FastifyRequest): void };
  onAccountCreated?: (name: string) => Promise<void> | void;
}

const ID_PARAM = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 128 } } } as const;
const ROOM_SCHEMA = {
  type: 'object',
  required: ['name'],
  // `members: null` is a public room, as GET /api/chat/rooms writes one; absent is public too.
  properties: { name: { type: 'string', maxLength: 256 }, members: { type: ['array', 'null'], maxItems: 64, items: { type: 'string', maxLength: 320 } } },
} as const;
/** `?limit=N`: the newest N messages (still oldest first). Digits only, as query strings are text. */
const LIMIT_QUERY = { type: 'object', properties: { limit: { type: 'string', pattern: '^[0-9]{1,6}$' } } } as const;
const TEXT_SCHEMA = { type: 'object', required: ['text'], properties: { text: { type: 'string', maxLength: 20_000 } } } as const;
const POST_SCHEMA = {
  type: 'object',
  required: ['title', 'body'],
  properties: { title: { type: 'string', maxLength: 1000 }, body: { type: 'string', maxLength: 100_000 } },
} as const;
const ACCOUNT_SCHEMA = {
  type: 'object',
  required: ['user', 'password'],
  properties: { user: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: 4096 }, admin: { type: 'boolean' } },
} as const;
const PASSWORD_SCHEMA = {
  type: 'object',
  required: ['current', 'password'],
  properties: { current: { type: 'string', maxLength: 4096 }, password: { type: 'string', maxLength: 4096 } },
} as const;

/** The page's own CSP: the API's policy (no inline script), with images from data: for the SVG. */
export const PAGE_CSP = `${CONTENT_SECURITY_POLICY}; img-src 'self' data:`;

function need<T>(service: T | undefined, what: string): T {
  if (!service) throw new AppError('not_found', `this node has no ${what}`, 404);
  return service;
}

/** A header value as one string ("" when absent). */
const header = (request: FastifyRequest, name: string): string => {
  const value = request.headers[name];
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
};

/**
 * The file name an `X-File-Name` header carries: percent-encoded UTF-8 (what the portal sends),
 * or the name as it is. Node reads header bytes as Latin-1, so a name sent as raw UTF-8 bytes
 * (curl, most HTTP libraries) is decoded as UTF-8 when its bytes are valid UTF-8; a Latin-1 name
 * ("r\xe9sum\xe9") is not valid UTF-8 and stays as it came.
 */
export function fileNameHeader(value: string): string {
  let name = value;
  if (/[\x80-\xff]/.test(name) && !/[^\x00-\xff]/.test(name)) {
    try {
      name = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(name, 'latin1'));
    } catch {
      // not UTF-8: Latin-1 it is
    }
  }
  try {
    return decodeURIComponent(name);
  } catch {
    return name; // not percent-encoded ("100%.txt"): taken as it is
  }
}

/**
 * What a multipart body's parser threw, as the API's error: a malformed or cut-short body is the
 * client's (400 bad_multipart), not the node's (it was a 500); limits are 413.
 */
function multipartError(error: unknown, maxBytes: number): AppError {
  if (error instanceof AppError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'FST_REQ_FILE_TOO_LARGE') return new AppError('file_too_large', `a file may have at most ${Math.floor(maxBytes / 1024 / 1024)} MiB`, 413);
  if (code === 'FST_PARTS_LIMIT' || code === 'FST_FILES_LIMIT' || code === 'FST_FIELDS_LIMIT') {
    return new AppError('too_many_parts', 'send one file in the field "file" and at most 4 other fields', 413);
  }
  return new AppError('bad_multipart', 'the multipart body is malformed or cut short; send the file in a field named "file"', 400);
}

/** A multipart file's bytes, its parser's errors turned into the API's. */
async function* guardedMultipart(stream: AsyncIterable<Uint8Array>, maxBytes: number): AsyncIterable<Uint8Array> {
  try {
    yield* stream;
  } catch (error) {
    throw multipartError(error, maxBytes);
  }
}

/**
 * JSON of lists the services keep between requests (a long room, the blog list): the same array
 * object means the same list, so its encoded text is kept with it and not built again per request.
 */
const serialised = new WeakMap<object, Buffer>();
function sendList(reply: FastifyReply, list: readonly unknown[]): FastifyReply {
  let body = serialised.get(list);
  if (body === undefined) {
    body = Buffer.from(JSON.stringify(list));
    serialised.set(list, body);
  }
  return reply.type('application/json; charset=utf-8').send(body);
}

export function registerAppRoutes(api: FastifyInstance, ctx: AppRoutesContext): void {
  const { services, requireSession, member } = ctx;
  const assets = loadPortalAssets();
  const guard = { onRequest: requireSession };

  // ---- the page
  const serveAsset = (name: string, reply: FastifyReply) => {
    const asset = assets.get(name);
    if (!asset) throw new AppError('not_found', 'there is nothing at this address', 404);
    void reply.type(asset.type).header('cache-control', 'no-cache');
    if (name.endsWith('.html')) void reply.header('content-security-policy', PAGE_CSP);
    return reply.send(asset.body);
  };
  api.get('/', async (_request, reply) => serveAsset('index.html', reply));
  api.get<{ Params: { file: string } }>('/ui/:file', async (request, reply) => serveAsset(request.params.file, reply));

  // Who is logged in, or null: the page asks this first (a 401 would show as an error in the console).
  api.get('/api/session', async (request) => {
    try {
      await requireSession(request);
    } catch {
      return { user: null };
    }
    const account = member(request);
    const household = services.household;
    return { user: account.name, address: `${account.name}@${household}`, household, admin: account.admin };
  });

  // ---- directory and mail read state
  api.get('/api/directory', guard, async () => (services.directory ? services.directory() : []));
  api.post<{ Params: { id: string } }>('/api/mail/:id/read', { ...guard, schema: { params: ID_PARAM } }, async (request, reply) => {
    if (!/^[0-9a-f]{32,64}$/.test(request.params.id)) throw new AppError('mail_not_found', 'there is no such mail', 404);
    await services.mail.markRead?.(member(request).name, request.params.id);
    return reply.code(204).send();
  });

  // ---- chat
  api.get('/api/chat/rooms', guard, async (request) => need(services.chat, 'chat').rooms(member(request).name));
  api.post<{ Body: { name: string; members?: string[] | null } }>('/api/chat/rooms', { ...guard, schema: { body: ROOM_SCHEMA } }, async (request, reply) => {
    const { name, members } = request.body;
    const created = await need(services.chat, 'chat').createRoom(member(request).name, members === undefined || members === null ? { name } : { name, members });
    return reply.code(201).send(created);
  });
  api.get<{ Params: { id: string }; Querystring: { limit?: string } }>(
    '/api/chat/rooms/:id/messages',
    { ...guard, schema: { params: ID_PARAM, querystring: LIMIT_QUERY } },
    async (request, reply) => {
      const limit = request.query.limit === undefined ? undefined : Number(request.query.limit);
      return sendList(reply, await need(services.chat, 'chat').messages(member(request).name, request.params.id, limit));
    },
  );
  api.post<{ Params: { id: string }; Body: { text: string } }>(
    '/api/chat/rooms/:id/messages',
    { ...guard, schema: { params: ID_PARAM, body: TEXT_SCHEMA } },
    async (request, reply) => reply.code(201).send(await need(services.chat, 'chat').post(member(request).name, request.params.id, request.body.text)),
  );

  // ---- blog
  api.get('/api/blog', guard, async (_request, reply) => sendList(reply, await need(services.blog, 'blog').list()));
  api.post<{ Body: { title: string; body: string } }>('/api/blog', { ...guard, schema: { body: POST_SCHEMA } }, async (request, reply) =>
    reply.code(201).send(await need(services.blog, 'blog').publish(member(request).name, request.body)),
  );
  api.get<{ Params: { id: string } }>('/api/blog/:id', { ...guard, schema: { params: ID_PARAM } }, async (request) => need(services.blog, 'blog').get(request.params.id));
  api.post<{ Params: { id: string }; Body: { text: string } }>(
    '/api/blog/:id/comments',
    { ...guard, schema: { params: ID_PARAM, body: TEXT_SCHEMA } },
    async (request, reply) => reply.code(201).send(await need(services.blog, 'blog').comment(member(request).name, request.params.id, request.body.text)),
  );

  // ---- files (in a context of their own: its body parser hands the raw stream to the route)
  void api.register(async (files) => {
    files.removeAllContentTypeParsers();
    files.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    // Multipart streams too; its own limit sits one byte past ours, so ours answers first.
    const maxBytes = services.files?.maxBytes ?? 0;
    await files.register(multipart, { limits: { fileSize: maxBytes + 1, files: 1, fields: 4, parts: 5 } });
    files.get('/api/files', guard, async (request) => need(services.files, 'file sharing').list(member(request).name));
    files.post('/api/files', guard, async (request, reply) => {
      const service = need(services.files, 'file sharing');
      const length = Number(header(request, 'content-length') || NaN);
      // A multipart body is a little bigger than its file: allow for the part headers.
      const slack = request.isMultipart() ? 16 * 1024 : 0;
      if (Number.isFinite(length) && length > service.maxBytes + slack) {
        throw new AppError('file_too_large', `a file may have at most ${Math.floor(service.maxBytes / 1024 / 1024)} MiB`, 413);
      }
      const share = header(request, 'x-share-with').trim();
      const shareWith = share === 'neighbourhood' ? null : share === '' ? [] : share.split(',');
      if (request.isMultipart()) {
        let part: Awaited<ReturnType<typeof request.file>>;
        try {
          part = await request.file();
        } catch (error) {
          throw multipartError(error, service.maxBytes);
        }
        if (!part || part.fieldname !== 'file') throw new AppError('no_file', 'send the file in a multipart field named "file"', 400);
        const created = await service.upload(member(request).name, { name: part.filename, shareWith, body: guardedMultipart(part.file, service.maxBytes) });
        return reply.code(201).send(created);
      }
      const name = fileNameHeader(header(request, 'x-file-name'));
      let body = request.body as AsyncIterable<Uint8Array> | undefined;
      if (!body || typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== 'function') {
        // No body reaches a parser when it is empty and untyped (fetch of an empty Blob): with a
        // name, that is an empty file.
        if (name === '' || body !== undefined) throw new AppError('no_file', 'send the file as the request body', 400);
        body = Readable.from([]);
      }
      const created = await service.upload(member(request).name, { name, shareWith, body });
      return reply.code(201).send(created);
    });
    files.get<{ Params: { id: string } }>('/api/files/:id', { ...guard, schema: { params: ID_PARAM } }, async (request, reply) => {
      const { view, chunks } = await need(services.files, 'file sharing').open(member(request).name, request.params.id);
      // Always a download, never rendered on the portal's origin (an uploaded .html is not a page).
      void reply
        .type('application/octet-stream')
        .header('content-disposition', contentDisposition(view.name))
        .header('content-length', String(view.size))
        .header('content-security-policy', "sandbox; default-src 'none'");
      return reply.send(Readable.from(chunks, { objectMode: false }));
    });
  });

  // ---- live updates
  const streams = new Set<() => void>();
  api.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });
  api.get('/api/events', guard, async (request, reply) => {
    const events = need(services.events, 'live updates');
    const user = member(request).name;
    // HEAD asks for the headers only: the stream never ends, so it must not be started.
    if (request.method === 'HEAD') return reply.type('text/event-stream; charset=utf-8').send();
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    raw.write('retry: 3000\n\n');
    // A stream lives no longer than its session: logging out (anywhere) ends it at the next write.
    const write = (text: string) =>
      void requireSession(request).then(
        () => raw.write(text),
        () => end(),
      );
    const unsubscribe = events.subscribe(user, (event) => write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`));
    const ping = setInterval(() => write(': ping\n\n'), 25_000);
    ping.unref();
    const end = () => {
      if (!streams.delete(end)) return;
      clearInterval(ping);
      unsubscribe();
      raw.end();
    };
    streams.add(end);
    request.raw.on('close', end);
  });

  // ---- accounts
  const requireAdmin = async (request: FastifyRequest) => {
    await requireSession(request);
    if (!member(request).admin) throw new AppError('admin_only', 'only an admin of the household may do this', 403);
  };
  api.get('/api/accounts', { onRequest: requireAdmin }, async () => ctx.accounts.list());
  api.post<{ Body: { user: string; password: string; admin?: boolean } }>(
    '/api/accounts',
    { onRequest: requireAdmin, schema: { body: ACCOUNT_SCHEMA } },
    async (request, reply) => {
      const user = request.body.user.trim().toLowerCase();
      checkMemberName(user);
      checkPassword(request.body.password);
      const account = await ctx.accounts.add(user, request.body.password, { admin: request.body.admin === true });
      try {
        await ctx.onAccountCreated?.(account.name);
      } catch (error) {
        request.log.error({ err: error }, 'after creating an account');
      }
      return reply.code(201).send(account);
    },
  );
  api.post<{ Body: { current: string; password: string } }>(
    '/api/me/password',
    { onRequest: [requireSession, ctx.passwordAttempts.onRequest], schema: { body: PASSWORD_SCHEMA } },
    async (request, reply) => {
      const name = member(request).name;
      if (!(await ctx.accounts.verify(name, request.body.current))) throw new AppError('bad_credentials', 'the current password is wrong', 401);
      ctx.passwordAttempts.succeeded(request);
      checkPassword(request.body.password);
      await ctx.accounts.setPassword(name, request.body.password);
      // A new password ends every other session; this one continues under a fresh id.
      ctx.sessions.destroyAllFor(name);
      ctx.startSession(request, reply, name);
      return reply.code(204).send();
    },
  );
  api.post('/api/logout-all', guard, async (request, reply) => {
    ctx.sessions.destroyAllFor(member(request).name);
    ctx.endSession(reply);
    return reply.code(204).send();
  });
}
