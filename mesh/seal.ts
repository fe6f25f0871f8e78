/**
 * Sealing: a payload encrypted to one or more recipients' X25519 keys, so relays can store and
 * forward it without reading it. The recipients' key ids stay visible: the network may know
 * who a record is for (so it can carry it there), never what it says.
 *
 * Byte layout, version 1:
 *
 *   off         size        field
 *   0           1           version = 1
 *   1           32          ephemeral X25519 public key E
 *   33          1           recipient count n (1..MAX_RECIPIENTS)
 *   34          8n          recipient ids: keyId of each recipient's X25519 key
 *   34+8n       48(n-1)     content key wrapped for recipients 2..n
 *                           (ChaCha20-Poly1305 under k_i, zero nonce: 32 bytes + 16 tag)
 *   34+56n-48   rest        ciphertext: ChaCha20-Poly1305 under K, zero nonce, with tag
 *
 *   k_i = HKDF-SHA256(ikm = X25519(e, R_i), salt = E || R_i, info = "citizen-seal-v1")
 *   K   = k_1 (the first recipient needs no wrapped key, so a one-recipient seal costs 58 bytes)
 *   AAD = caller's context (the record author's key id) || header bytes up to the ciphertext
 *
 * Every key is fresh (a new ephemeral key per seal), so the zero nonce is never reused
 * under one key.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { ByteReader, ByteWriter, concatBytes, equalBytes, utf8 } from './bytes.ts';
import { MeshError } from './errors.ts';
import { KEY_ID_LENGTH, keyId, secureRandom, type Identity, type RandomBytes } from './identity.ts';

export const SEAL_VERSION = 1;
export const MAX_RECIPIENTS = 32;
const INFO = utf8('citizen-seal-v1');
const NONCE = new Uint8Array(12);
const TAG = 16;
const WRAPPED = 32 + TAG;

function deriveKey(shared: Uint8Array, ephemeral: Uint8Array, recipient: Uint8Array): Uint8Array {
  return hkdf(sha256, shared, concatBytes(ephemeral, recipient), INFO, 32);
}

/** Bytes a sealed payload adds to its plaintext. */
export function sealOverhead(recipients: number): number {
  return 1 + 32 + 1 + KEY_ID_LENGTH * recipients + WRAPPED * (recipients - 1) + TAG;
}

/** Encrypt `plaintext` to the given X25519 keys. `context` is bound in (e.g. the author's key id). */
export function seal(
  plaintext: Uint8Array,
  recipients: Uint8Array[],
  context: Uint8Array,
  random: RandomBytes = secureRandom,
): Uint8Array {
  if (recipients.length < 1 || recipients.length > MAX_RECIPIENTS) {
    throw new MeshError('SEAL_RECIPIENTS', `a sealed payload needs 1 to ${MAX_RECIPIENTS} recipients, got ${recipients.length}`);
  }
  const ephemeralSecret = random(32);
  const ephemeral = x25519.getPublicKey(ephemeralSecret);
  const keys = recipients.map((r) => {
    if (r.length !== 32) throw new MeshError('KEY_INVALID', 'recipient key must be 32 bytes');
    let shared: Uint8Array;
    try {
      shared = x25519.getSharedSecret(ephemeralSecret, r);
    } catch (cause) {
      throw new MeshError('KEY_INVALID', 'recipient key is not a valid X25519 key', { cause });
    }
    return deriveKey(shared, ephemeral, r);
  });
  const contentKey = keys[0]!;
  const w = new ByteWriter(plaintext.length + sealOverhead(recipients.length)).u8(SEAL_VERSION).bytes(ephemeral).u8(recipients.length);
  for (const r of recipients) w.bytes(keyId(r));
  for (let i = 1; i < keys.length; i++) w.bytes(chacha20poly1305(keys[i]!, NONCE).encrypt(contentKey));
  const header = w.finish();
  const ciphertext = chacha20poly1305(contentKey, NONCE, concatBytes(context, header)).encrypt(plaintext);
  return concatBytes(header, ciphertext);
}

/** The parts of a sealed payload visible to everyone. */
export interface SealedHeader {
  ephemeral: Uint8Array;
  recipients: Uint8Array[];
  wrapped: Uint8Array[];
  headerLength: number;
}

/** Read the public header of a sealed payload (throws SEAL_MALFORMED, SEAL_VERSION). */
export function decodeSealedHeader(sealed: Uint8Array): SealedHeader {
  const r = new ByteReader(sealed, 'sealed payload', 'SEAL_MALFORMED');
  const version = r.u8();
  if (version !== SEAL_VERSION) throw new MeshError('SEAL_VERSION', `unknown sealed payload version ${version}`);
  const ephemeral = r.bytes(32);
  const n = r.u8();
  if (n < 1 || n > MAX_RECIPIENTS) throw new MeshError('SEAL_MALFORMED', `sealed payload names ${n} recipients`);
  const recipients: Uint8Array[] = [];
  for (let i = 0; i < n; i++) recipients.push(r.bytes(KEY_ID_LENGTH));
  const wrapped: Uint8Array[] = [];
  for (let i = 1; i < n; i++) wrapped.push(r.bytes(WRAPPED));
  if (r.remaining < TAG) throw new MeshError('SEAL_MALFORMED', 'sealed payload is truncated');
  return { ephemeral, recipients, wrapped, headerLength: r.offset };
}

/** Key ids of the recipients a sealed payload names. */
export function sealedRecipients(sealed: Uint8Array): Uint8Array[] {
  return decodeSealedHeader(sealed).recipients.map((r) => Uint8Array.from(r));
}

/**
 * Decrypt a sealed payload with `identity`'s agreement key. Throws SEAL_NOT_RECIPIENT when it
 * is not addressed to this key, SEAL_FORGED when authentication fails (tampered bytes, wrong
 * context), SEAL_MALFORMED for bad structure.
 */
export function open(sealed: Uint8Array, identity: Identity, context: Uint8Array): Uint8Array {
  const header = decodeSealedHeader(sealed);
  const myId = keyId(identity.agreementKey);
  const aad = concatBytes(context, sealed.subarray(0, header.headerLength));
  const ciphertext = sealed.subarray(header.headerLength);
  let addressed = false;
  for (let i = 0; i < header.recipients.length; i++) {
    if (!equalBytes(header.recipients[i]!, myId)) continue;
    addressed = true;
    try {
      const k = deriveKey(identity.agree(header.ephemeral), header.ephemeral, identity.agreementKey);
      const contentKey = i === 0 ? k : chacha20poly1305(k, NONCE).decrypt(header.wrapped[i - 1]!);
      return chacha20poly1305(contentKey, NONCE, aad).decrypt(ciphertext);
    } catch {
      // A key-id collision or a forgery: try any other slot naming us, then give up.
    }
  }
  if (!addressed) throw new MeshError('SEAL_NOT_RECIPIENT', 'this sealed payload is not addressed to this key');
  throw new MeshError('SEAL_FORGED', 'sealed payload failed authentication');
}
