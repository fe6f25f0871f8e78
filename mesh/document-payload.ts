/**
 * The two control payloads of a document, and how its feed id is derived. The genesis record
 * (kind DocumentGenesis, seq 0 of the creator's feed) says what the document is and who may
 * write it; an ACL record (kind DocumentAcl, by the owner) grants more writers later.
 *
 * Feed id = first 8 bytes of SHA-256("citizen-feed-v1" || creator key id || nonce). The
 * creator is the owner: only the key whose id went into the hash can sign a genesis that
 * matches the feed, so no one can claim someone else's document.
 *
 * Genesis payload, version 1 (`varint` = unsigned LEB128, canonical):
 *
 *   off  size    field
 *   0    1       version = 1
 *   1    8       nonce: random bytes chosen by the creator
 *   9    varint  type length t, 1..32
 *   .    t       type: ASCII words of [a-z0-9] joined by '-' ('chat-room', 'blog', 'list', ...)
 *   .    varint  name length n, 0..128
 *   .    n       name: UTF-8
 *   .    1       policy: 0 = anyone may write; 1 = only the owner and the listed writers
 *   .    varint  writer count w, 0..512 (policy 1 only)
 *   .    8·w     writer key ids, strictly ascending
 *
 * ACL payload, version 1 (grants only; revocation is deliberately absent, see document.ts):
 *
 *   off  size    field
 *   0    1       version = 1
 *   1    varint  grant count g, 1..512
 *   .    8·g     key ids granted write access, strictly ascending
 *
 * Lists are sorted and free of duplicates so every value has exactly one encoding. Decoders
 * check every length and throw MeshError: DOCUMENT_TRUNCATED, DOCUMENT_VERSION,
 * DOCUMENT_MALFORMED; encoders refuse bad input with DOCUMENT_INVALID.
 */
import { createHash } from 'node:crypto';
import { ByteReader, ByteWriter, compareBytes, fromUtf8, utf8 } from './bytes.ts';
import { MeshError } from './errors.ts';
import { KEY_ID_LENGTH } from './identity.ts';
import { FEED_ID_LENGTH } from './record.ts';

export const DOCUMENT_PAYLOAD_VERSION = 1;
export const DOCUMENT_NONCE_LENGTH = 8;
export const MAX_DOCUMENT_TYPE_LENGTH = 32;
export const MAX_DOCUMENT_NAME_BYTES = 128;
/** Most key ids in one genesis or ACL record; more writers take several ACL records. */
export const MAX_WRITERS_PER_RECORD = 512;

const FEED_DOMAIN = utf8('citizen-feed-v1');
const TYPE_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const POLICY_ANYONE = 0;
const POLICY_LISTED = 1;

/** Who may write a document besides its owner: everyone, or the listed key ids. */
export type WritePolicy = 'anyone' | readonly Uint8Array[];

/** What a genesis record says about its document. */
export interface GenesisPayload {
  /** What kind of document this is, e.g. 'chat-room', 'blog', 'mail-thread', 'list', 'directory'. */
  type: string;
  name: string;
  nonce: Uint8Array;
  writers: WritePolicy;
}

/** What an ACL record says: these key ids may write from now on (and their earlier updates count). */
export interface AclPayload {
  grant: readonly Uint8Array[];
}

/** The feed id a creator's genesis with this nonce must carry. */
export function deriveFeedId(creator: Uint8Array, nonce: Uint8Array): Uint8Array {
  const h = createHash('sha256').update(FEED_DOMAIN).update(creator).update(nonce).digest();
  return new Uint8Array(h.subarray(0, FEED_ID_LENGTH));
}

/** True for a well-formed document type name. */
export function isDocumentType(type: string): boolean {
  return type.length <= MAX_DOCUMENT_TYPE_LENGTH && TYPE_PATTERN.test(type);
}

function invalid(message: string): MeshError {
  return new MeshError('DOCUMENT_INVALID', message);
}

/** Sorted, de-duplicated copy of a key id list, checked for length and count. */
export function canonicalKeyIds(ids: readonly Uint8Array[], min: number): Uint8Array[] {
  for (const id of ids) {
    if (!(id instanceof Uint8Array) || id.length !== KEY_ID_LENGTH) throw invalid(`key ids must be ${KEY_ID_LENGTH} bytes`);
  }
  const sorted = [...ids].sort(compareBytes).filter((id, i, a) => i === 0 || compareBytes(a[i - 1]!, id) !== 0);
  if (sorted.length < min || sorted.length > MAX_WRITERS_PER_RECORD) {
    throw invalid(`a record lists ${min} to ${MAX_WRITERS_PER_RECORD} key ids, got ${sorted.length}`);
  }
  return sorted.map((id) => Uint8Array.from(id));
}

function writeKeyIds(w: ByteWriter, ids: readonly Uint8Array[]): void {
  w.varint(ids.length);
  for (const id of ids) w.bytes(id);
}

function readKeyIds(r: ByteReader, min: number): Uint8Array[] {
  const count = r.varint();
  if (count < min || count > MAX_WRITERS_PER_RECORD) {
    throw new MeshError('DOCUMENT_MALFORMED', `key id count ${count} is outside ${min}..${MAX_WRITERS_PER_RECORD}`);
  }
  const ids: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const id = Uint8Array.from(r.bytes(KEY_ID_LENGTH));
    if (i > 0 && compareBytes(ids[i - 1]!, id) >= 0) {
      throw new MeshError('DOCUMENT_MALFORMED', 'key ids are not strictly ascending');
    }
    ids.push(id);
  }
  return ids;
}

/** Run a decoder, turning the byte reader's generic DECODE_* errors into DOCUMENT_MALFORMED. */
function decoding<T>(what: string, payload: Uint8Array, body: (r: ByteReader) => T): T {
  if (!(payload instanceof Uint8Array)) throw new MeshError('DOCUMENT_MALFORMED', `${what} is not bytes`);
  const r = new ByteReader(payload, what, 'DOCUMENT_TRUNCATED');
  try {
    const version = r.u8();
    if (version !== DOCUMENT_PAYLOAD_VERSION) throw new MeshError('DOCUMENT_VERSION', `unknown ${what} version ${version}`);
    const value = body(r);
    if (r.remaining !== 0) throw new MeshError('DOCUMENT_MALFORMED', `${what} has ${r.remaining} trailing bytes`);
    return value;
  } catch (err) {
    if (err instanceof MeshError && err.code.startsWith('DECODE_')) {
      throw new MeshError('DOCUMENT_MALFORMED', err.message, { cause: err });
    }
    throw err;
  }
}

/** Encode a genesis payload. Writers are sorted and de-duplicated; throws DOCUMENT_INVALID. */
export function encodeGenesis(genesis: GenesisPayload): Uint8Array {
  if (!isDocumentType(genesis.type)) throw invalid(`document type must be 1-32 chars of [a-z0-9] words joined by '-'`);
  const name = utf8(genesis.name);
  if (name.length > MAX_DOCUMENT_NAME_BYTES) throw invalid(`document name exceeds ${MAX_DOCUMENT_NAME_BYTES} bytes`);
  if (!(genesis.nonce instanceof Uint8Array) || genesis.nonce.length !== DOCUMENT_NONCE_LENGTH) {
    throw invalid(`nonce must be ${DOCUMENT_NONCE_LENGTH} bytes`);
  }
  const w = new ByteWriter(64)
    .u8(DOCUMENT_PAYLOAD_VERSION)
    .bytes(genesis.nonce)
    .lengthPrefixed(utf8(genesis.type))
    .lengthPrefixed(name);
  if (genesis.writers === 'anyone') {
    w.u8(POLICY_ANYONE);
  } else {
    w.u8(POLICY_LISTED);
    writeKeyIds(w, canonicalKeyIds(genesis.writers, 0));
  }
  return w.finish();
}

/** Decode a genesis payload from untrusted bytes. */
export function decodeGenesis(payload: Uint8Array): GenesisPayload {
  return decoding('document genesis', payload, (r) => {
    const nonce = Uint8Array.from(r.bytes(DOCUMENT_NONCE_LENGTH));
    const typeBytes = r.lengthPrefixed(MAX_DOCUMENT_TYPE_LENGTH);
    // The pattern is ASCII-only, so a valid type's bytes and characters coincide.
    const type = String.fromCharCode(...typeBytes);
    if (!isDocumentType(type)) throw new MeshError('DOCUMENT_MALFORMED', 'document type is not a valid type name');
    const name = fromUtf8(r.lengthPrefixed(MAX_DOCUMENT_NAME_BYTES), 'document name');
    const policy = r.u8();
    let writers: WritePolicy;
    if (policy === POLICY_ANYONE) writers = 'anyone';
    else if (policy === POLICY_LISTED) writers = readKeyIds(r, 0);
    else throw new MeshError('DOCUMENT_MALFORMED', `unknown write policy ${policy}`);
    return { type, name, nonce, writers };
  });
}

/** Encode an ACL payload (at least one grant). Throws DOCUMENT_INVALID. */
export function encodeAcl(acl: AclPayload): Uint8Array {
  const w = new ByteWriter(16).u8(DOCUMENT_PAYLOAD_VERSION);
  writeKeyIds(w, canonicalKeyIds(acl.grant, 1));
  return w.finish();
}

/** Decode an ACL payload from untrusted bytes. */
export function decodeAcl(payload: Uint8Array): AclPayload {
  return decoding('document ACL', payload, (r) => ({ grant: readKeyIds(r, 1) }));
}
