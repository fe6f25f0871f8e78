/**
 * Ways to damage valid encodings, for the fuzz tests of decoders: every one-bit flip, and
 * random edits (flip a bit, set a byte, cut the tail, insert or delete a byte) as fast-check
 * draws them.
 */
import fc from 'fast-check';

/** One edit: a position and a value (both reduced as the edit needs) and what to do. */
export type ByteEdit = [at: number, value: number, how: 'flip' | 'set' | 'cut' | 'insert' | 'delete'];

export const byteEdit: fc.Arbitrary<ByteEdit> = fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('flip', 'set', 'cut', 'insert', 'delete'));

/** `bytes` after `edits`, in order; `bytes` itself is never changed. */
export function applyByteEdits(bytes: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  let b = bytes;
  for (const [at, value, how] of edits) {
    const i = b.length ? at % b.length : 0;
    if (how === 'flip' && b.length) (b = b.slice())[i]! ^= 1 << value % 8;
    else if (how === 'set' && b.length) (b = b.slice())[i] = value;
    else if (how === 'cut') b = b.subarray(0, i);
    else if (how === 'insert') b = Uint8Array.from([...b.subarray(0, i), value, ...b.subarray(i)]);
    else if (how === 'delete') b = Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + 1)]);
  }
  return b;
}

/** A copy of `bytes` for each of its bits, with that bit flipped. */
export function* oneBitFlips(bytes: Uint8Array): Generator<{ bit: number; flipped: Uint8Array }> {
  for (let bit = 0; bit < 8 * bytes.length; bit++) {
    const flipped = bytes.slice();
    flipped[bit >> 3]! ^= 1 << (bit & 7);
    yield { bit, flipped };
  }
}
