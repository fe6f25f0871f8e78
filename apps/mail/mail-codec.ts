/**
 * The plaintext of a mail, before sealing. Addresses are `member@household` or internet
 * addresses; the authenticated sender is the record's author, so `from` here is what the
 * author claims (a gateway uses it for the internet sender).
 *
 * Layout, version 1 (varint = unsigned LEB128; text is UTF-8 with a varint length):
 *
 *   off  size  field
 *   0    1     version = 1
 *   1    text  from (≤ 320 bytes)
 *   .    1     recipient count n (1..32)
 *   .    text  × n  recipient addresses (≤ 320 bytes each)
 *   .    text  subject (≤ 998 bytes, RFC 5322's line limit)
 *   .    text  body
 */
import { ByteReader, ByteWriter, fromUtf8, utf8 } from '../../mesh/bytes.ts';
import { MeshError } from '../../mesh/errors.ts';

export const MAIL_VERSION = 1;
export const MAX_ADDRESS_BYTES = 320;
export const MAX_SUBJECT_BYTES = 998;
export const MAX_MAIL_RECIPIENTS = 31; // plus the sender's own copy: the seal's limit of 32

export interface MailContent {
  from: string;
  to: string[];
  subject: string;
  body: string;
}

export function encodeMail(mail: MailContent): Uint8Array {
  const w = new ByteWriter(256).u8(MAIL_VERSION).lengthPrefixed(utf8(mail.from)).u8(mail.to.length);
  for (const to of mail.to) w.lengthPrefixed(utf8(to));
  return w.lengthPrefixed(utf8(mail.subject)).lengthPrefixed(utf8(mail.body)).finish();
}

export function decodeMail(bytes: Uint8Array): MailContent {
  const r = new ByteReader(bytes, 'mail', 'MAIL_MALFORMED');
  const version = r.u8();
  if (version !== MAIL_VERSION) throw new MeshError('MAIL_VERSION', `unknown mail version ${version}`);
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
  r.end();
  return { from, to, subject, body };
}
