/**
 * Ed25519 signatures behind one small interface, with two implementations that must agree on
 * every input: `nobleEd25519` (@noble/curves, strict RFC 8032 decoding) and `nodeEd25519`
 * (Node's OpenSSL binding, several times faster). Node's binding gets the same canonical-
 * encoding checks in front of it (S < L, canonical y for A and R, no negative zero, no
 * small-order key) and noble's word on whatever it refuses (the cofactor rule), so both
 * accept exactly the same signatures and a record verifies identically on every node.
 * The default is the faster one; the benchmark prints both.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { concatBytes } from './bytes.ts';

export interface SignatureScheme {
  readonly name: string;
  /** The 32-byte public key of a 32-byte secret seed. */
  publicKey(seed: Uint8Array): Uint8Array;
  sign(message: Uint8Array, seed: Uint8Array): Uint8Array;
  /** False for any invalid, malformed or non-canonical input; never throws. */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

export const nobleEd25519: SignatureScheme = {
  name: 'noble',
  publicKey: (seed) => ed25519.getPublicKey(seed),
  sign: (message, seed) => ed25519.sign(message, seed),
  verify(signature, message, publicKey) {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    try {
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
};

const SPKI_PREFIX = Uint8Array.from(Buffer.from('302a300506032b6570032100', 'hex'));
const PKCS8_PREFIX = Uint8Array.from(Buffer.from('302e020100300506032b657004220420', 'hex'));
// Group order L and field prime p, little-endian, as RFC 8032 encodes them.
const L_LE = Uint8Array.from(Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex'));
const P_LE = Uint8Array.from(Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'));
const ONE_LE = new Uint8Array(32);
ONE_LE[0] = 1;
const P_MINUS_ONE_LE = Uint8Array.from(Buffer.from('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'));
// The canonical encodings of the eight small-order points. noble rejects them as keys; OpenSSL
// does not (with A = identity, R = [S]B verifies for every message).
const SMALL_ORDER = new Set(ED25519_TORSION_SUBGROUP);

/** a < b for 32-byte little-endian numbers. */
function lessThanLE(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (a[i] !== b[i]) return a[i]! < b[i]!;
  }
  return false;
}

/** RFC 8032 §5.1.3 canonical point encoding: y < p, and no sign bit on x = 0 (y = ±1). */
function isCanonicalPoint(encoded: Uint8Array): boolean {
  const y = encoded.slice(0, 32);
  const sign = (y[31]! & 0x80) !== 0;
  y[31]! &= 0x7f;
  if (!lessThanLE(y, P_LE)) return false;
  if (sign && (equal32(y, ONE_LE) || equal32(y, P_MINUS_ONE_LE))) return false;
  return true;
}

function equal32(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Public KeyObjects are costly to build; keep the most recent ones. */
class KeyCache {
  private readonly map = new Map<string, KeyObject | null>();
  constructor(private readonly limit: number) {}
  get(publicKey: Uint8Array): KeyObject | null {
    const k = Buffer.from(publicKey).toString('latin1');
    let key = this.map.get(k);
    if (key === undefined) {
      try {
        key = SMALL_ORDER.has(Buffer.from(publicKey).toString('hex'))
          ? null
          : createPublicKey({ key: Buffer.from(concatBytes(SPKI_PREFIX, publicKey)), format: 'der', type: 'spki' });
      } catch {
        key = null;
      }
      if (this.map.size >= this.limit) this.map.delete(this.map.keys().next().value!);
      this.map.set(k, key);
    }
    return key;
  }
}

/**
 * Ed25519 through Node's crypto, with strict encoding checks so it agrees with noble.
 * `cacheSize` public keys and `signerCacheSize` private keys are kept as KeyObjects (building
 * one costs more than a signature); a process that signs for more identities than that, such
 * as a simulator running hundreds of households, should keep one per identity.
 */
export function createNodeEd25519(cacheSize = 4096, signerCacheSize = 64): SignatureScheme {
  const cache = new KeyCache(cacheSize);
  const signers = new Map<string, KeyObject>();
  const privateKey = (seed: Uint8Array): KeyObject => {
    const k = Buffer.from(seed).toString('latin1');
    let key = signers.get(k);
    if (!key) {
      key = createPrivateKey({ key: Buffer.from(concatBytes(PKCS8_PREFIX, seed)), format: 'der', type: 'pkcs8' });
      if (signers.size >= signerCacheSize) signers.delete(signers.keys().next().value!);
      signers.set(k, key);
    }
    return key;
  };
  return {
    name: 'node',
    publicKey(seed) {
      const spki = createPublicKey(privateKey(seed)).export({ format: 'der', type: 'spki' });
      return new Uint8Array(spki.subarray(spki.length - 32));
    },
    sign(message, seed) {
      return new Uint8Array(nodeSign(null, message, privateKey(seed)));
    },
    verify(signature, message, publicKey) {
      if (signature.length !== 64 || publicKey.length !== 32) return false;
      if (!lessThanLE(signature.subarray(32), L_LE)) return false;
      if (!isCanonicalPoint(publicKey) || !isCanonicalPoint(signature.subarray(0, 32))) return false;
      const key = cache.get(publicKey);
      if (key === null) return false;
      try {
        if (nodeVerify(null, message, key, signature)) return true;
      } catch {
        // fall through to the reference check
      }
      // OpenSSL checks [S]B = R + [k]A, noble checks it times the cofactor 8 (RFC 8032 allows
      // both). They differ only when A or R has a small-order component, which no honest
      // signer produces and which costs a scalar multiplication to detect; so only a rejection
      // pays for the reference check, and both accept exactly the same signatures.
      return nobleEd25519.verify(signature, message, publicKey);
    },
  };
}

export const nodeEd25519: SignatureScheme = createNodeEd25519();

/** The scheme the node uses unless told otherwise. */
export const defaultEd25519: SignatureScheme = nodeEd25519;
