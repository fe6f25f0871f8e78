/**
 * Byte helpers: canonical varints at their edges (padding, > 2^53, more than 8 bytes,
 * truncation), the bounds-checked reader, the growable writer, hex and strict UTF-8. Random
 * inputs come from fast-check with a printed seed (FC_SEED=<seed> replays a run).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ByteReader,
  ByteWriter,
  compareBytes,
  concatBytes,
  equalBytes,
  fromHex,
  fromUtf8,
  MAX_VARINT,
  memoByContent,
  toHex,
  utf8,
  varintLength,
} from '../../mesh/bytes.ts';
import { MeshError } from '../../mesh/errors.ts';

const seed = Number(process.env.FC_SEED ?? 20260301);

/** Asserts that `fn` throws a MeshError with this code. */
function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof MeshError && err.name === 'MeshError' && err.code === code);
}

const readVarint = (bytes: number[]) => {
  const r = new ByteReader(Uint8Array.from(bytes), 'test');
  const value = r.varint();
  r.end();
  return value;
};

describe('mesh/bytes', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  describe('varint', () => {
    it('encodes known values to known bytes', () => {
      const cases: [number, string][] = [
        [0, '00'],
        [1, '01'],
        [127, '7f'],
        [128, '8001'],
        [300, 'ac02'],
        [16383, 'ff7f'],
        [16384, '808001'],
        [2 ** 32 - 1, 'ffffffff0f'],
        [2 ** 49 - 1, 'ffffffffffff7f'],
        [MAX_VARINT, 'ffffffffffffff0f'],
      ];
      for (const [value, hex] of cases) {
        assert.equal(toHex(new ByteWriter().varint(value).finish()), hex, `${value}`);
        assert.equal(varintLength(value), hex.length / 2, `length of ${value}`);
        assert.equal(readVarint([...fromHex(hex)]), value, `decode ${hex}`);
      }
    });

    it('round-trips every safe integer (property)', () => {
      fc.assert(
        fc.property(fc.maxSafeNat(), (value) => {
          const bytes = new ByteWriter(1).varint(value).finish();
          assert.equal(bytes.length, varintLength(value));
          assert.ok(bytes.length <= 8);
          assert.equal(readVarint([...bytes]), value);
        }),
        { seed, numRuns: 2000 },
      );
    });

    it('refuses padded (non-canonical) encodings', () => {
      throwsCode(() => readVarint([0x80, 0x00]), 'DECODE_VARINT'); // 0 in two bytes
      throwsCode(() => readVarint([0x81, 0x00]), 'DECODE_VARINT'); // 1 in two bytes
      throwsCode(() => readVarint([0xff, 0x80, 0x00]), 'DECODE_VARINT');
      throwsCode(() => readVarint([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), 'DECODE_VARINT');
    });

    it('refuses values of 2^53 and above, and encodings longer than 8 bytes', () => {
      throwsCode(() => readVarint([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]), 'DECODE_VARINT'); // 2^53
      throwsCode(() => readVarint([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), 'DECODE_VARINT'); // 2^56 - 1
      throwsCode(() => readVarint([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 'DECODE_VARINT');
      throwsCode(() => readVarint([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), 'DECODE_VARINT');
    });

    it('refuses to encode what it could not decode', () => {
      for (const bad of [-1, 0.5, 2 ** 53, Number.NaN, Infinity]) {
        throwsCode(() => new ByteWriter().varint(bad), 'ENCODE_RANGE');
      }
    });

    it('throws the reader’s code when a varint is cut short', () => {
      throwsCode(() => readVarint([]), 'DECODE_TRUNCATED');
      throwsCode(() => readVarint([0x80]), 'DECODE_TRUNCATED');
      throwsCode(() => readVarint([0xff, 0xff, 0xff]), 'DECODE_TRUNCATED');
      const r = new ByteReader(Uint8Array.from([0x80]), 'thing', 'THING_TRUNCATED');
      throwsCode(() => r.varint(), 'THING_TRUNCATED');
    });

    it('either decodes random bytes canonically or throws a DECODE_ code (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
          const r = new ByteReader(bytes, 'random');
          let value: number;
          try {
            value = r.varint();
          } catch (err) {
            assert.ok(err instanceof MeshError && err.code.startsWith('DECODE_'), String(err));
            return;
          }
          // Whatever decodes re-encodes to exactly the bytes read: one encoding per value.
          assert.ok(Number.isSafeInteger(value) && value >= 0);
          assert.deepEqual(new ByteWriter().varint(value).finish(), bytes.subarray(0, r.offset));
        }),
        { seed, numRuns: 3000 },
      );
    });
  });

  describe('ByteReader', () => {
    it('reads u8, u32 (big-endian) and bytes, and says where it ran out', () => {
      const r = new ByteReader(fromHex('01deadbeef0a0b0c'), 'frame');
      assert.equal(r.u8(), 1);
      assert.equal(r.u32(), 0xdeadbeef);
      assert.deepEqual(r.bytes(2), fromHex('0a0b'));
      assert.equal(r.remaining, 1);
      assert.throws(
        () => r.bytes(2),
        (err: unknown) => err instanceof MeshError && err.code === 'DECODE_TRUNCATED' && /frame.*offset 7/.test(err.message),
      );
      throwsCode(() => r.end(), 'DECODE_TRAILING');
      r.u8();
      r.end();
      throwsCode(() => r.u8(), 'DECODE_TRUNCATED');
      throwsCode(() => new ByteReader(fromHex('010203'), 'x').u32(), 'DECODE_TRUNCATED');
    });

    it('checks length prefixes against the limit before reading', () => {
      const ok = new ByteReader(fromHex('03aabbcc'), 'x');
      assert.deepEqual(ok.lengthPrefixed(3), fromHex('aabbcc'));
      throwsCode(() => new ByteReader(fromHex('03aabbcc'), 'x').lengthPrefixed(2), 'DECODE_LENGTH');
      throwsCode(() => new ByteReader(fromHex('04aabbcc'), 'x').lengthPrefixed(10), 'DECODE_TRUNCATED');
      // A huge claimed length fails on the limit, not on an allocation.
      throwsCode(() => new ByteReader(fromHex('ffffffffffffff0f'), 'x').lengthPrefixed(1 << 20), 'DECODE_LENGTH');
    });

    it('reads subarrays at any offset in the underlying buffer', () => {
      const backing = fromHex('ffff05aabbccddeeffff');
      const r = new ByteReader(backing.subarray(2, 8), 'x');
      assert.deepEqual(r.lengthPrefixed(5), fromHex('aabbccddee'));
      r.end();
    });
  });

  describe('ByteWriter', () => {
    it('grows from any initial size, including 0 and 1', () => {
      for (const initial of [0, 1, 2, 256]) {
        const w = new ByteWriter(initial);
        for (let i = 0; i < 1000; i++) w.u8(i);
        w.u32(0x01020304).varint(300).lengthPrefixed(fromHex('abcd')).bytes(new Uint8Array(5000));
        const out = w.finish();
        assert.equal(out.length, w.length);
        assert.equal(out.length, 1000 + 4 + 2 + 3 + 5000, `initial ${initial}`);
        assert.equal(out[999], 999 & 0xff);
        assert.equal(toHex(out.subarray(1000, 1009)), '01020304ac0202abcd');
      }
    });

    it('returns a copy: later writes do not change earlier results', () => {
      const w = new ByteWriter(4).u8(1);
      const first = w.finish();
      w.u8(2);
      assert.deepEqual(first, Uint8Array.of(1));
      assert.deepEqual(w.finish(), Uint8Array.of(1, 2));
    });
  });

  describe('helpers', () => {
    it('hex round-trips and refuses bad hex', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
          assert.deepEqual(fromHex(toHex(bytes)), bytes);
          assert.deepEqual(fromHex(toHex(bytes).toUpperCase()), bytes);
        }),
        { seed, numRuns: 500 },
      );
      for (const bad of ['0', 'abc', 'zz', '0x00', ' 00', '00 ', 'g0']) throwsCode(() => fromHex(bad), 'DECODE_HEX');
      assert.deepEqual(fromHex(''), new Uint8Array(0));
      const sub = fromHex('00112233').subarray(1, 3);
      assert.equal(toHex(sub), '1122');
    });

    it('decodes UTF-8 strictly', () => {
      assert.equal(fromUtf8(utf8('grüße, 🌻')), 'grüße, 🌻');
      for (const bad of ['ff', 'c0af', 'e28228', 'eda080', 'f4908080']) throwsCode(() => fromUtf8(fromHex(bad)), 'DECODE_UTF8');
    });

    it('compares, concatenates and tests equality of byte strings', () => {
      assert.equal(compareBytes(fromHex('01'), fromHex('0100')) < 0, true);
      assert.equal(compareBytes(fromHex('02'), fromHex('0100')) > 0, true);
      assert.equal(compareBytes(fromHex('abcd'), fromHex('abcd')), 0);
      assert.deepEqual(concatBytes(fromHex('01'), new Uint8Array(0), fromHex('0203')), fromHex('010203'));
      assert.deepEqual(concatBytes(), new Uint8Array(0));
      assert.equal(equalBytes(fromHex('0102'), fromHex('0102')), true);
      assert.equal(equalBytes(fromHex('0102'), fromHex('010203')), false);
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b) => {
          const c = compareBytes(a, b);
          assert.equal(Math.sign(c) + Math.sign(compareBytes(b, a)), 0);
          assert.equal(c === 0, equalBytes(a, b));
          assert.equal(Math.sign(c), Math.sign(Buffer.compare(a, b)));
        }),
        { seed, numRuns: 1000 },
      );
    });
  });

  describe('memoByContent', () => {
    it('answers what compute answers, computing each content once, and forgets at its bounds', () => {
      const calls: string[] = [];
      const reversed = memoByContent((b) => (calls.push(toHex(b)), Uint8Array.from(b).reverse()), 2, 4);
      const view = Uint8Array.of(9, 1, 2, 3).subarray(1); // a view into a larger buffer counts by its own bytes
      assert.deepEqual(reversed(view), Uint8Array.of(3, 2, 1));
      assert.deepEqual(reversed(Uint8Array.of(1, 2, 3)), Uint8Array.of(3, 2, 1));
      assert.deepEqual(calls, ['010203'], 'the same content again is remembered');
      reversed(Uint8Array.of(1, 2, 3, 4, 5)); // over maxBytes: computed every time
      reversed(Uint8Array.of(1, 2, 3, 4, 5));
      assert.equal(calls.length, 3);
      reversed(Uint8Array.of(7)); // a second content fills the memory
      reversed(Uint8Array.of(8)); // a third starts it over
      reversed(Uint8Array.of(1, 2, 3));
      assert.deepEqual(calls.slice(3), ['07', '08', '010203']);
    });
  });
});
