/**
 * Mail plaintexts and delivery receipts against hostile bytes (fast-check; the seed is printed
 * and FC_SEED=<seed> replays it): random bytes, every truncation and every one-bit flip of
 * valid encodings, random edits, and valid-looking lengths far past the end. decodeMail gives
 * a mail that encodes back to the same bytes or a MeshError MAIL_* (DECODE_TRAILING for
 * trailing bytes); decodeReceipt the ids or RECEIPT_*.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeMail, encodeMail, type MailContent } from '../../apps/mail/mail-codec.ts';
import { decodeReceipt, encodeReceipt } from '../../apps/mail/mail-receipts.ts';
import { MeshError } from '../../mesh/errors.ts';
import { seededRandom } from '../helpers/random.ts';
import { applyByteEdits, byteEdit, oneBitFlips } from '../helpers/byte-edits.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const random = seededRandom(seed);

const mails: MailContent[] = [
  { from: 'alice@rose', to: ['bob@lily'], subject: 'Hi', body: 'Tea at four?' },
  { from: 'someone@example.org', to: ['alice@rose', 'carol@rose', 'dan@oak'], subject: 'Ünïcödé ✓', body: 'x'.repeat(300), authentication: { spf: 'pass', dkim: 'fail', dmarc: 'policy' } },
  { from: '', to: [''], subject: '', body: '' },
];
const validMails = mails.map(encodeMail);
const validReceipts = [encodeReceipt([random(8)]), encodeReceipt(Array.from({ length: 12 }, () => random(8)))];

function judgeMail(bytes: Uint8Array): void {
  let mail: MailContent;
  try {
    mail = decodeMail(bytes);
  } catch (err) {
    assert.ok(err instanceof MeshError, `decodeMail threw ${String(err)}`);
    // Trailing bytes come out with the byte reader's own code (decodeMail calls r.end() outside
    // its wrapping try): a typed MeshError, if not a MAIL_ one.
    assert.match(err.code, /^(MAIL_(MALFORMED|VERSION)|DECODE_TRAILING)$/);
    return;
  }
  assert.deepEqual(encodeMail(mail), bytes, 'a decoded mail encodes back to its bytes');
}

function judgeReceipt(bytes: Uint8Array): void {
  let ids: Uint8Array[];
  try {
    ids = decodeReceipt(bytes);
  } catch (err) {
    assert.ok(err instanceof MeshError, `decodeReceipt threw ${String(err)}`);
    assert.match(err.code, /^RECEIPT_(MALFORMED|VERSION)$/);
    return;
  }
  assert.deepEqual(encodeReceipt(ids), bytes);
}


describe('apps/mail codecs (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('every truncation and every one-bit flip of valid mails and receipts', () => {
    for (const [valid, judge] of [[validMails, judgeMail], [validReceipts, judgeReceipt]] as const) {
      for (const bytes of valid) {
        for (let n = 0; n < bytes.length; n++) {
          judge(bytes.subarray(0, n));
          assert.throws(() => (judge === judgeMail ? decodeMail : decodeReceipt)(bytes.subarray(0, n)), { name: 'MeshError' });
        }
        for (const { flipped } of oneBitFlips(bytes)) {
          judge(flipped);
        }
      }
    }
  });

  it('random bytes, random edits and huge length prefixes', () => {
    // A varint length of up to 2^53 - 1 where a text's length goes: refused, not allocated.
    const hugeLength = fc.tuple(fc.constantFrom(1, 2), fc.bigInt({ min: 1n, max: (1n << 53n) - 1n }), fc.uint8Array({ maxLength: 40 })).map(([version, n, rest]) => {
      const out: number[] = [version];
      for (let v = n; ; v >>= 7n) {
        out.push(Number(v & 0x7fn) | (v >= 0x80n ? 0x80 : 0));
        if (v < 0x80n) break;
      }
      return Uint8Array.from([...out, ...rest]);
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }),
          hugeLength,
          fc.tuple(fc.constantFrom(...validMails, ...validReceipts), fc.array(byteEdit, { minLength: 1, maxLength: 4 })).map(([b, e]) => applyByteEdits(b, e)),
        ),
        (bytes) => {
          judgeMail(bytes);
          judgeReceipt(bytes);
        },
      ),
      { seed, numRuns: 4000 },
    );
  });
});
