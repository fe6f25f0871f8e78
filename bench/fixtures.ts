/**
 * Inputs shared by the benchmarks: seeded authors, the "typical record" the figures speak of
 * (seq < 128, ttl 30 days, 8-byte author id, 100-byte payload), and a signature scheme that
 * signs with zeros, for measuring the codec and the store without the cost of Ed25519.
 */
import { nobleEd25519, type SignatureScheme } from '../mesh/ed25519.ts';
import { Identity } from '../mesh/identity.ts';
import { RecordKind, type RecordFields } from '../mesh/record.ts';
import { seededRandom } from '../test/helpers/random.ts';

export const T0 = 1_790_000_000;
export const TTL_30_DAYS = 30 * 86400;
export const TYPICAL_PAYLOAD = 100;

/** Signs nothing: 64 zero bytes. Only for codec and store figures, never for verification. */
export const zeroSignature: SignatureScheme = {
  name: 'zero',
  publicKey: (seed) => nobleEd25519.publicKey(seed),
  sign: () => new Uint8Array(64),
  verify: () => false,
};

export function makeAuthors(count: number, seed: number, scheme?: SignatureScheme): Identity[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Identity.generate(random, scheme));
}

/** A typical record's fields: a direct message, seq < 128, ttl 30 days. */
export function typicalFields(i: number, payload: Uint8Array): RecordFields {
  return {
    kind: RecordKind.Message,
    feed: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, i & 0xff),
    seq: i % 128,
    time: T0,
    ttl: TTL_30_DAYS,
    payload,
  };
}
