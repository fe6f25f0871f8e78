/**
 * Record figures: created (encoded and signed), verified with each Ed25519 implementation,
 * encoded and decoded without signing, and the envelope: what a record costs beyond its
 * payload, typical and at the extremes.
 */
import { nobleEd25519, nodeEd25519 } from '../mesh/ed25519.ts';
import { Identity } from '../mesh/identity.ts';
import { createRecord, decodeRecord, envelopeLength, MAX_PAYLOAD, verifyRecord } from '../mesh/record.ts';
import { seededRandom } from '../test/helpers/random.ts';
import { T0, TYPICAL_PAYLOAD, typicalFields, zeroSignature } from './fixtures.ts';
import { rate, type Report } from './harness.ts';

export function benchRecords(report: Report, budgetMs: number): { envelope: { typical: number; min: number; max: number; maxFullKey: number } } {
  const random = seededRandom(3);
  const payload = random(TYPICAL_PAYLOAD);
  const seed = random(32);
  const secret = random(32);

  report.section('Records (typical: direct message, seq < 128, ttl 30 days, 8-byte author id, 100-byte payload)');
  for (const scheme of [nobleEd25519, nodeEd25519]) {
    const author = new Identity(seed, secret, scheme);
    report.add(`records signed (createRecord), ${scheme.name}`, rate((i) => createRecord(typicalFields(i, payload), author), budgetMs), 'records/s');
  }
  const author = new Identity(seed, secret);
  const records = Array.from({ length: 64 }, (_, i) => createRecord(typicalFields(i, payload), author));
  const resolveKey = () => [author.signingKey];
  for (const scheme of [nobleEd25519, nodeEd25519]) {
    report.add(
      `records verified (verifyRecord), ${scheme.name}`,
      rate((i) => verifyRecord(records[i % records.length]!, { now: T0, resolveKey, scheme }), budgetMs),
      'records/s',
    );
  }
  const unsigned = new Identity(seed, secret, zeroSignature);
  report.add('records encoded + decoded (signing stubbed out)', rate((i) => createRecord(typicalFields(i, payload), unsigned), budgetMs), 'records/s');
  report.add('records decoded (decodeRecord)', rate((i) => decodeRecord(records[i % records.length]!.bytes), budgetMs), 'records/s');

  report.section('Envelope (record bytes beyond the payload)');
  const typical = envelopeLength(records[5]!);
  const min = envelopeLength(createRecord({ ...typicalFields(0, new Uint8Array(0)), ttl: 0 }, unsigned));
  const extreme = { seq: Number.MAX_SAFE_INTEGER, ttl: 0xffffffff, payload: new Uint8Array(MAX_PAYLOAD) };
  const max = envelopeLength(createRecord({ ...typicalFields(0, payload), ...extreme }, unsigned));
  const maxFullKey = envelopeLength(createRecord({ ...typicalFields(0, payload), ...extreme, fullKey: true }, unsigned));
  report.add('envelope, typical record', typical, 'bytes', 'goal <= 96; LXMF 111');
  report.add('envelope, minimum (seq 0, no expiry, short payload)', min, 'bytes');
  report.add('envelope, maximum with an 8-byte author id', max, 'bytes', 'seq 2^53-1, ttl 2^32-1, 16 KiB payload');
  report.add('envelope, maximum with the full 32-byte key', maxFullKey, 'bytes');
  report.add('typical record on the air, 100-byte payload', records[5]!.bytes.length, 'bytes', 'one LoRa frame carries 255');
  return { envelope: { typical, min, max, maxFullKey } };
}
