/**
 * Identities: an Ed25519 key for signatures and an X25519 key for sealing, a short key id
 * used on the air, and a fingerprint people can read to each other. Secrets stay inside the
 * `Identity` object: it prints and serialises as its public half only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { defaultEd25519, type SignatureScheme } from './ed25519.ts';
import { equalBytes, fromHex, memoByContent, toHex, utf8 } from './bytes.ts';
import { MeshError } from './errors.ts';

/** Injected source of randomness (the simulator passes a seeded one). */
export type RandomBytes = (length: number) => Uint8Array;
export const secureRandom: RandomBytes = (n) => new Uint8Array(randomBytes(n));

export const KEY_ID_LENGTH = 8;
const KEY_ID_DOMAIN = utf8('citizen-key-id-v1');

/** The key id of `publicKey`, shared: callers must not change it (see `keyId`). Keys are 32 bytes. */
const sharedKeyId = memoByContent(
  (publicKey) => new Uint8Array(createHash('sha256').update(KEY_ID_DOMAIN).update(publicKey).digest().subarray(0, KEY_ID_LENGTH)),
  8192,
  64,
);

/** First 8 bytes of SHA-256(domain || key): how a key is named on the air and in indexes. */
export function keyId(publicKey: Uint8Array): Uint8Array {
  return Uint8Array.from(sharedKeyId(publicKey));
}

/** True when `id` is the key id of `publicKey` (as `equalBytes(keyId(publicKey), id)`, without a copy). */
export function isKeyIdOf(publicKey: Uint8Array, id: Uint8Array): boolean {
  return equalBytes(sharedKeyId(publicKey), id);
}

const BASE32 = 'abcdefghijkmnpqrstuvwxyz23456789'; // no l, o, 0, 1: easy to read aloud

/**
 * A human-checkable fingerprint of a signing key: 80 bits as four groups of four characters
 * from an alphabet without look-alikes, e.g. `k7m2-9qx4-ab3d-f8pe`.
 */
export function fingerprint(publicKey: Uint8Array): string {
  const h = createHash('sha256').update(utf8('citizen-fingerprint-v1')).update(publicKey).digest();
  let bits = 0;
  let acc = 0;
  let out = '';
  for (let i = 0; out.length < 16; ) {
    if (bits < 5) {
      acc = (acc << 8) | h[i++]!;
      bits += 8;
    }
    out += BASE32[(acc >>> (bits - 5)) & 31];
    bits -= 5;
  }
  return out.match(/.{4}/g)!.join('-');
}

/** The public half of an identity: what others need to verify and to seal. */
export interface PublicIdentity {
  readonly signingKey: Uint8Array;
  readonly agreementKey: Uint8Array;
}

/** A key pair set: Ed25519 seed for signing, X25519 secret for agreement. */
export class Identity implements PublicIdentity {
  readonly signingKey: Uint8Array;
  readonly agreementKey: Uint8Array;
  readonly id: Uint8Array;
  readonly #signingSeed: Uint8Array;
  readonly #agreementSecret: Uint8Array;
  readonly #scheme: SignatureScheme;

  constructor(signingSeed: Uint8Array, agreementSecret: Uint8Array, scheme: SignatureScheme = defaultEd25519) {
    if (signingSeed.length !== 32) throw new MeshError('KEY_INVALID', 'signing seed must be 32 bytes');
    if (agreementSecret.length !== 32) throw new MeshError('KEY_INVALID', 'agreement secret must be 32 bytes');
    this.#signingSeed = Uint8Array.from(signingSeed);
    this.#agreementSecret = Uint8Array.from(agreementSecret);
    this.#scheme = scheme;
    this.signingKey = scheme.publicKey(this.#signingSeed);
    this.agreementKey = x25519.getPublicKey(this.#agreementSecret);
    this.id = keyId(this.signingKey);
  }

  static generate(random: RandomBytes = secureRandom, scheme?: SignatureScheme): Identity {
    return new Identity(random(32), random(32), scheme);
  }

  sign(message: Uint8Array): Uint8Array {
    return this.#scheme.sign(message, this.#signingSeed);
  }

  /** X25519 shared secret with another party's agreement key. */
  agree(theirAgreementKey: Uint8Array): Uint8Array {
    try {
      return x25519.getSharedSecret(this.#agreementSecret, theirAgreementKey);
    } catch (cause) {
      throw new MeshError('KEY_INVALID', 'agreement key is not a valid X25519 key', { cause });
    }
  }

  get fingerprint(): string {
    return fingerprint(this.signingKey);
  }

  get publicIdentity(): PublicIdentity {
    return { signingKey: this.signingKey, agreementKey: this.agreementKey };
  }

  /** The secret form, for the key file only. */
  exportSecret(): { version: 1; ed25519_seed: string; x25519_secret: string } {
    return { version: 1, ed25519_seed: toHex(this.#signingSeed), x25519_secret: toHex(this.#agreementSecret) };
  }

  static importSecret(data: unknown, scheme?: SignatureScheme): Identity {
    const d = data as { version?: unknown; ed25519_seed?: unknown; x25519_secret?: unknown } | null;
    if (!d || d.version !== 1 || typeof d.ed25519_seed !== 'string' || typeof d.x25519_secret !== 'string') {
      throw new MeshError('KEY_FILE_INVALID', 'key file is not a version-1 Citizen key');
    }
    try {
      return new Identity(fromHex(d.ed25519_seed, 'ed25519 seed'), fromHex(d.x25519_secret, 'x25519 secret'), scheme);
    } catch (cause) {
      // Bad hex or a wrong length: still "not a valid key file" to the caller.
      throw new MeshError('KEY_FILE_INVALID', 'key file holds a malformed key', { cause });
    }
  }

  /** Public fields only: secrets never reach logs or API answers. */
  toJSON(): { key_id: string; signing_key: string; agreement_key: string; fingerprint: string } {
    return {
      key_id: toHex(this.id),
      signing_key: toHex(this.signingKey),
      agreement_key: toHex(this.agreementKey),
      fingerprint: this.fingerprint,
    };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Identity(${this.fingerprint})`;
  }
}
