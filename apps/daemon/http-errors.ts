/**
 * Every error the HTTP API answers, in the one shape SPEC §4 names:
 * `{"error": "<machine code>", "message": "<human sentence>"}`.
 *
 * AppErrors keep their status and code (lowercased, so the API's codes read alike:
 * ACCOUNT_EXISTS → "account_exists"). Fastify's own client errors (bad JSON, schema
 * validation, body too large, wrong media type) map by status. A write the disk refused (full
 * or read-only, from the store or a file, whatever error wraps it) answers 507 `disk_full` or
 * `disk_read_only`. Anything else is a bug: it answers 500 with a fixed sentence, never the
 * error's message or stack.
 */
import { diskProblemOf, errorChain, type DiskProblem } from '../../mesh/errors.ts';

/** The body of every error answer. */
export interface ErrorBody {
  error: string;
  message: string;
}

const CODES: Readonly<Record<number, string>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  409: 'conflict',
  411: 'length_required',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  421: 'misdirected_request',
  429: 'too_many_requests',
  431: 'headers_too_large',
  503: 'unavailable',
  507: 'insufficient_storage',
};

/** What a member is told when the disk refused a write (the API answers 507 Insufficient Storage). */
const DISK_REPLIES: Readonly<Record<DiskProblem, ErrorBody>> = {
  full: {
    error: 'disk_full',
    message: "the household's disk is full, so this was not saved; free some space on it (or ask whoever looks after the node) and try again",
  },
  'read-only': {
    error: 'disk_read_only',
    message: "the household's disk is read-only, so this was not saved; make it writable again (or ask whoever looks after the node) and try again",
  },
};

/** True when the record store refused the write itself (it tells the node's log already). */
export function refusedByStore(error: unknown): boolean {
  for (const e of errorChain(error)) if (e.code === 'STORE_DISK_FULL' || e.code === 'STORE_READ_ONLY') return true;
  return false;
}

/** Fastify's own errors whose message is a bare status phrase ("Unsupported Media Type"), said as a sentence. */
const SENTENCES: Readonly<Record<string, string>> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'this address takes JSON: send the body with Content-Type: application/json',
};

interface AppErrorLike {
  name: 'AppError';
  code: string;
  status: number;
  message: string;
}

function isAppError(error: unknown): error is AppErrorLike {
  const e = error as Partial<AppErrorLike> | null;
  return typeof e === 'object' && e !== null && e.name === 'AppError' && typeof e.code === 'string' && typeof e.status === 'number';
}

const validStatus = (status: unknown): status is number => typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599;

/** The status and body to answer for `error` (thrown by a route, a hook or fastify itself). */
export function errorReply(error: unknown): { status: number; body: ErrorBody; disk?: DiskProblem } {
  const disk = diskProblemOf(error);
  if (disk) return { status: 507, body: { ...DISK_REPLIES[disk] }, disk };
  if (isAppError(error)) {
    const status = validStatus(error.status) ? error.status : 500;
    return { status, body: { error: error.code.toLowerCase(), message: error.message } };
  }
  const e = error as { statusCode?: unknown; validation?: unknown; message?: unknown } | null;
  const status = e && validStatus(e.statusCode) ? e.statusCode : 500;
  if (status >= 500) return { status, body: { error: CODES[status] ?? 'internal_error', message: 'the node hit an internal error; see its log' } };
  const code = (error as { code?: unknown } | null)?.code;
  const text =
    typeof code === 'string' && code in SENTENCES
      ? SENTENCES[code]!
      : typeof e?.message === 'string' && e.message.length > 0 && e.message.length <= 300
        ? e.message
        : 'the request was not understood';
  return { status, body: { error: CODES[status] ?? `http_${status}`, message: text } };
}
