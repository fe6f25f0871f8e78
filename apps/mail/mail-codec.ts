/**
 * The plaintext of a mail, before sealing. Addresses are `member@household` or internet
 * addresses; the authenticated sender is the record's author, so `from` here is what the
 * author claims (a gateway uses it for the internet sender).
 *
 * Layout, version 1 or 2 (varint = unsigned LEB128; text is UTF-8 with a varint length):
 *
 *   off  size  field
 *   0    1     version = 1, or 2 when authentication results follow the body
 *   1    text  from (≤ 320 bytes)
 *   .    1     recipient count n (1..32)
 *   .    text  × n  recipient addresses (≤ 320 bytes each)
 *   .    text  subject (≤ 998 bytes, RFC 5322's line limit)
 *   .    text  body
 *   .    3     version 2 only: SPF, DKIM, DMARC results of internet mail as the SMTP gateway
 *              found them, each a code: 0 none, 1 pass, 2 fail, 3 softfail, 4 neutral,
 *              5 temperror, 6 permerror, 7 policy
 *
 * A mail without authentication results is written as version 1, byte for byte as before.
 */
import { ByteReader, ByteWriter, fromUtf8, utf8 } from '../../mesh/bytes.ts';
import { MeshError } from '../../mesh/errors.ts';
import type { AuthResult, MailAuthentication } from '../../gateway/mail-auth.ts';

export const MAIL_VERSION = 1;
/** The version that carries authentication results. */
export const MAIL_VERSION_AUTHENTICATED = 2;
/** Authentication result codes (index = code), as in the layout above. */
const AUTH_CODES: readonly AuthResult[] = ['none', 'pass', 'fail', 'softfail', 'neutral', 'temperror', 'permerror', 'policy'];
export const MAX_ADDRESS_BYTES = 320;
export const MAX_SUBJECT_BYTES = 998;
export const MAX_MAIL_RECIPIENTS = 31; // plus the sender's own copy: the seal's limit of 32

export interface MailContent {
  from: string;
  to: string[];
  subject: string;
  body: string;
  /** SPF/DKIM/DMARC of internet mail, set by the SMTP gateway that took it in. */
  authentication?: MailAuthentication;
}

function authCode(result: AuthResult): number {
  const code = AUTH_CODES.indexOf(result);
  if (code < 0) throw new MeshError('MAIL_INVALID', `unknown authentication result "${result}"`);
  return code;
}

/**
 * `text` cut at a character boundary so that its UTF-8 form is at most `maxBytes` bytes (a
 * subject or address taken in from outside, fitted to this layout's limits).
 */
export function fitUtf8(text: string, maxBytes: number): string {
  if (utf8(text).length <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const size = utf8(char).length;
    if (bytes + size > maxBytes) break;
    out += char;
    bytes += size;
  }
  return out;
}

/**
 * Throws MeshError MAIL_INVALID for a mail this layout cannot hold (a sender, recipient or
 * subject over its limit, no recipient or too many), so nothing is sealed that would not decode.
 */
export function encodeMail(mail: MailContent): Uint8Array {
  const auth = mail.authentication;
  if (utf8(mail.from).length > MAX_ADDRESS_BYTES) throw new MeshError('MAIL_INVALID', `the sender address is longer than ${MAX_ADDRESS_BYTES} bytes`);
  if (mail.to.length < 1 || mail.to.length > MAX_MAIL_RECIPIENTS) throw new MeshError('MAIL_INVALID', `a mail names 1 to ${MAX_MAIL_RECIPIENTS} recipients, not ${mail.to.length}`);
  if (mail.to.some((to) => utf8(to).length > MAX_ADDRESS_BYTES)) throw new MeshError('MAIL_INVALID', `a recipient address is longer than ${MAX_ADDRESS_BYTES} bytes`);
  if (utf8(mail.subject).length > MAX_SUBJECT_BYTES) throw new MeshError('MAIL_INVALID', `the subject is longer than ${MAX_SUBJECT_BYTES} bytes`);
  const w = new ByteWriter(256).u8(auth ? MAIL_VERSION_AUTHENTICATED : MAIL_VERSION).lengthPrefixed(utf8(mail.from)).u8(mail.to.length);
  for (const to of mail.to) w.lengthPrefixed(utf8(to));
  w.lengthPrefixed(utf8(mail.subject)).lengthPrefixed(utf8(mail.body));
  if (auth) w.u8(authCode(auth.spf)).u8(authCode(auth.dkim)).u8(authCode(auth.dmarc));
  return w.finish();
}

export function decodeMail(bytes: Uint8Array): MailContent {
  const r = new ByteReader(bytes, 'mail', 'MAIL_MALFORMED');
  const version = r.u8();
  if (version !== MAIL_VERSION && version !== MAIL_VERSION_AUTHENTICATED) throw new MeshError('MAIL_VERSION', `unknown mail version ${version}`);
  const text = (max: number, what: string) => {
    try {
      return fromUtf8(r.lengthPrefixed(max), what);
    } catch (cause) {
      throw new MeshError('MAIL_MALFORMED', `mail ${what} is malformed`, { cause });
    }
  };
  const from = text(MAX_ADDRESS_BYTES, 'sender');
  const n = r.u8();
  if (n < 1 || n > MAX_MAIL_RECIPIENTS) throw new MeshError('MAIL_MALFORMED', `mail names ${n} recipients`);
  const to: string[] = [];
  for (let i = 0; i < n; i++) to.push(text(MAX_ADDRESS_BYTES, 'recipient'));
  const subject = text(MAX_SUBJECT_BYTES, 'subject');
  const body = text(Number.MAX_SAFE_INTEGER, 'body');
  if (version === MAIL_VERSION) {
    r.end();
    return { from, to, subject, body };
  }
  const result = () => {
    const code = r.u8();
    if (code >= AUTH_CODES.length) throw new MeshError('MAIL_MALFORMED', `unknown authentication result code ${code}`);
    return AUTH_CODES[code]!;
  };
  const authentication: MailAuthentication = { spf: result(), dkim: result(), dmarc: result() };
  r.end();
  return { from, to, subject, body, authentication };
}
