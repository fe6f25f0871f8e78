/**
 * Records: the one unit that moves through the mesh. Immutable, signed by the author,
 * content-addressed (id = SHA-256 of the encoded bytes), and small, because a LoRa frame
 * carries 255 bytes and every byte of envelope is airtime.
 *
 * Byte layout, version 1 (integers: `varint` = unsigned LEB128, canonical; u32 big-endian):
 *
 *   off  size   field
 *   0    1      version = 1
 *   1    1      flags: bit 7 K: the author field is the full 32-byte Ed25519 key (self-
 *                      certifying records such as a household's directory entry);
 *                      bit 6 S: the payload is sealed (see seal.ts);
 *                      bits 5-4 priority: 0 urgent, 1 normal, 2 low, 3 bulk;
 *                      bits 3-0 kind (RecordKind)
 *   2    8|32   author: key id (keyId of the Ed25519 key) or, with K, the key itself
 *   .    8      feed: the document or feed the record belongs to
 *   .    varint seq: per (author, feed) sequence number, from 0
 *   .    4      time: seconds since the Unix epoch (u32)
 *   .    varint ttl: seconds from `time` until the record expires; 0 = never
 *   .    varint payload length (at most MAX_PAYLOAD)
 *   .    n      payload
 *   .    64     Ed25519 signature over SIGNING_DOMAIN || every byte above
 *
 * Envelope (measured by `npm run bench`): 92 bytes for a typical record (seq < 128, ttl of
 * 30 days, payload < 128 bytes), 89 at least, 102 at most with an 8-byte author id, 126 with
 * the full key. A fork (same author, feed and seq, different signed content) is evidence of a
 * stolen or cloned key.
 */
import { createHash } from 'node:crypto';
import { ByteReader, ByteWriter, concatBytes, equalBytes, utf8 } from './bytes.ts';
import { defaultEd25519, type SignatureScheme } from './ed25519.ts';
import { MeshError } from './errors.ts';
import { isKeyIdOf, KEY_ID_LENGTH, keyId, type Identity } from './identity.ts';

export const RECORD_VERSION = 1;
export const FEED_ID_LENGTH = 8;
export const RECORD_ID_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;
/** Largest payload a record may carry; bigger things travel as blobs (chunked records). */
export const MAX_PAYLOAD = 16 * 1024;
/** How far ahead of the receiver's clock a record's time may be. */
export const MAX_CLOCK_SKEW_S = 15 * 60;
const SIGNING_DOMAIN = utf8('citizen-record-v1');

export enum RecordKind {
  /** A household's or member's public keys and name (directory entry, key certificate). */
  Directory = 0,
  /** The first record of a document: its type and who may write it. */
  DocumentGenesis = 1,
  /** A Yjs update to a document. */
  DocumentUpdate = 2,
  /** A change to a document's writers, by its owner. */
  DocumentAcl = 3,
  /** A mail message (sealed). */
  Mail = 4,
  /** A signed file manifest. */
  BlobManifest = 5,
  /** A chunk of a file. */
  BlobChunk = 6,
  /** A direct message (sealed). */
  Message = 7,
}

export enum Priority {
  Urgent = 0,
  Normal = 1,
  Low = 2,
  Bulk = 3,
}

/** The fields an author chooses; the rest (author, signature, id) follow from them. */
export interface RecordFields {
  kind: RecordKind;
  feed: Uint8Array;
  seq: number;
  /** Unix seconds. */
  time: number;
  /** Seconds until expiry; 0 = never. */
  ttl?: number;
  priority?: Priority;
  sealed?: boolean;
  /** Put the full signing key in the record instead of its id (self-certifying records). */
  fullKey?: boolean;
  payload: Uint8Array;
}

/** A decoded record. `bytes` is the canonical encoding; everything else is read from it. */
export interface Record {
  readonly bytes: Uint8Array;
  readonly id: Uint8Array;
  readonly version: number;
  readonly kind: RecordKind;
  readonly priority: Priority;
  readonly sealed: boolean;
  /** Key id of the author (derived from the key when the record carries it). */
  readonly author: Uint8Array;
  /** The author's full key when the record carries it (flag K). */
  readonly authorKey: Uint8Array | null;
  readonly feed: Uint8Array;
  readonly seq: number;
  readonly time: number;
  readonly ttl: number;
  /** Unix seconds at which the record expires, or null. */
  readonly expires: number | null;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
  /** Length of the signed prefix of `bytes`. */
  readonly signedLength: number;
}

const FLAG_FULL_KEY = 0x80;
const FLAG_SEALED = 0x40;

/** The record id of encoded record bytes: SHA-256 of them. */
export function recordId(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function assertUint(value: number, field: string, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new MeshError('RECORD_INVALID', `record ${field} must be an integer from 0 to ${max}, got ${value}`);
  }
}

/** Encode and sign a record as `author`. */
export function createRecord(fields: RecordFields, author: Identity): Record {
  const priority = fields.priority ?? Priority.Normal;
  const ttl = fields.ttl ?? 0;
  assertUint(fields.kind, 'kind', 15);
  assertUint(priority, 'priority', 3);
  assertUint(fields.seq, 'seq', Number.MAX_SAFE_INTEGER);
  assertUint(fields.time, 'time', 0xffffffff);
  assertUint(ttl, 'ttl', 0xffffffff);
  if (fields.feed.length !== FEED_ID_LENGTH) throw new MeshError('RECORD_INVALID', `feed id must be ${FEED_ID_LENGTH} bytes`);
  if (fields.payload.length > MAX_PAYLOAD) {
    throw new MeshError('RECORD_TOO_LARGE', `payload of ${fields.payload.length} bytes exceeds the limit of ${MAX_PAYLOAD}`);
  }
  const flags = (fields.fullKey ? FLAG_FULL_KEY : 0) | (fields.sealed ? FLAG_SEALED : 0) | (priority << 4) | fields.kind;
  const w = new ByteWriter(fields.payload.length + 128)
    .u8(RECORD_VERSION)
    .u8(flags)
    .bytes(fields.fullKey ? author.signingKey : author.id)
    .bytes(fields.feed)
    .varint(fields.seq)
    .u32(fields.time)
    .varint(ttl)
    .lengthPrefixed(fields.payload);
  const signed = w.finish();
  const signature = author.sign(concatBytes(SIGNING_DOMAIN, signed));
  return decodeRecord(concatBytes(signed, signature));
}

/**
 * Decode a record's structure. Checks every length, the version, the flags and the payload
 * limit; does not check the signature (see verifyRecord). Throws MeshError with codes
 * RECORD_TRUNCATED, RECORD_VERSION, RECORD_TOO_LARGE, RECORD_TRAILING, RECORD_MALFORMED.
 */
export function decodeRecord(bytes: Uint8Array): Record {
  const r = new ByteReader(bytes, 'record', 'RECORD_TRUNCATED');
  const version = r.u8();
  if (version !== RECORD_VERSION) throw new MeshError('RECORD_VERSION', `unknown record version ${version}`);
  const flags = r.u8();
  const fullKey = (flags & FLAG_FULL_KEY) !== 0;
  let authorKey: Uint8Array | null = null;
  let author: Uint8Array;
  let feed: Uint8Array;
  let seq: number;
  let time: number;
  let ttl: number;
  let payload: Uint8Array;
  try {
    if (fullKey) {
      authorKey = r.bytes(32);
      author = keyId(authorKey);
    } else {
      author = r.bytes(KEY_ID_LENGTH);
    }
    feed = r.bytes(FEED_ID_LENGTH);
    seq = r.varint();
    time = r.u32();
    ttl = r.varint();
    if (ttl > 0xffffffff) throw new MeshError('RECORD_MALFORMED', `record ttl ${ttl} is out of range`);
    const length = r.varint();
    if (length > MAX_PAYLOAD) {
      throw new MeshError('RECORD_TOO_LARGE', `record payload of ${length} bytes exceeds the limit of ${MAX_PAYLOAD}`);
    }
    payload = r.bytes(length);
  } catch (err) {
    if (err instanceof MeshError && err.code.startsWith('DECODE_')) {
      throw new MeshError('RECORD_MALFORMED', err.message, { cause: err });
    }
    throw err;
  }
  const signedLength = r.offset;
  r.bytes(SIGNATURE_LENGTH);
  if (r.remaining !== 0) throw new MeshError('RECORD_TRAILING', `record has ${r.remaining} trailing bytes`);
  const copy = Uint8Array.from(bytes);
  return {
    bytes: copy,
    id: recordId(copy),
    version,
    kind: (flags & 0x0f) as RecordKind,
    priority: ((flags >> 4) & 0x03) as Priority,
    sealed: (flags & FLAG_SEALED) !== 0,
    author: Uint8Array.from(author),
    authorKey: authorKey && Uint8Array.from(authorKey),
    feed: Uint8Array.from(feed),
    seq,
    time,
    ttl,
    expires: ttl === 0 ? null : time + ttl,
    payload: copy.subarray(payload.byteOffset - bytes.byteOffset, payload.byteOffset - bytes.byteOffset + payload.length),
    signature: copy.subarray(signedLength),
    signedLength,
  };
}

/** Finds the Ed25519 keys that have this key id (usually zero or one). */
export type KeyResolver = (authorId: Uint8Array) => Iterable<Uint8Array>;

export interface VerifyOptions {
  /** Unix seconds now, from the injected clock. */
  now: number;
  resolveKey: KeyResolver;
  scheme?: SignatureScheme;
  maxClockSkewS?: number;
}

/**
 * Check a decoded record's signature and time. Returns the author's full Ed25519 key.
 * Throws MeshError: RECORD_UNKNOWN_AUTHOR (no key known yet for the author id: keep the
 * record pending, it is not proven bad), RECORD_BAD_SIGNATURE, RECORD_FUTURE, RECORD_EXPIRED.
 */
export function verifyRecord(record: Record, options: VerifyOptions): Uint8Array {
  const scheme = options.scheme ?? defaultEd25519;
  const skew = options.maxClockSkewS ?? MAX_CLOCK_SKEW_S;
  if (record.time > options.now + skew) {
    throw new MeshError('RECORD_FUTURE', `record time is ${record.time - options.now} s in the future`);
  }
  if (record.expires !== null && record.expires <= options.now) {
    throw new MeshError('RECORD_EXPIRED', 'record has expired');
  }
  const message = concatBytes(SIGNING_DOMAIN, record.bytes.subarray(0, record.signedLength));
  const candidates = record.authorKey ? [record.authorKey] : options.resolveKey(record.author);
  let known = false;
  for (const key of candidates) {
    known = true;
    if (!isKeyIdOf(key, record.author)) continue;
    if (scheme.verify(record.signature, message, key)) return key;
  }
  if (!known) throw new MeshError('RECORD_UNKNOWN_AUTHOR', 'record author key is not known yet');
  throw new MeshError('RECORD_BAD_SIGNATURE', 'record signature does not verify');
}

/** Two records are a fork when they share author, feed and seq but differ in signed content. */
export function isFork(a: Record, b: Record): boolean {
  return (
    equalBytes(a.author, b.author) &&
    equalBytes(a.feed, b.feed) &&
    a.seq === b.seq &&
    !equalBytes(a.bytes.subarray(0, a.signedLength), b.bytes.subarray(0, b.signedLength))
  );
}

/** Envelope bytes of a record: everything but the payload. */
export function envelopeLength(record: Record): number {
  return record.bytes.length - record.payload.length;
}
