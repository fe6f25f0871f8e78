/**
 * The libp2p stream's frame decoder and the beacon-claim check against hostile bytes
 * (fast-check; the seed is printed and FC_SEED=<seed> replays it). FrameDecoder: valid
 * streams split at any points give back exactly their frames; random bytes, valid streams
 * with edits, and length prefixes at and past the MTU give frames no larger than the MTU or
 * GatewayError FRAME_OVERSIZED / FRAME_MALFORMED, never more payload than was pushed.
 * beaconSender: any frame gives null or the 8 bytes after the two header bytes.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { beaconSender } from '../../gateway/beacon-claim.ts';
import { GatewayError } from '../../gateway/errors.ts';
import { encodeFrameHeader, FrameDecoder } from '../../gateway/libp2p-link.ts';
import { concatBytes } from '../../mesh/bytes.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const MTU = 16_384;

/** Splits `bytes` at the given cut points (taken modulo its length). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => (bytes.length ? c % (bytes.length + 1) : 0)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  return out;
}

function frameStream(payloads: Uint8Array[]): Uint8Array {
  return concatBytes(...payloads.flatMap((p) => [encodeFrameHeader(p.length), p]));
}

const payload = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: MTU }).map((n) => new Uint8Array(n).fill(7)));

describe('gateway/libp2p-link frames (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('valid streams split at any points decode to exactly their frames', () => {
    fc.assert(
      fc.property(fc.array(payload, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (payloads, cuts) => {
        const decoder = new FrameDecoder(MTU);
        const frames = split(frameStream(payloads), cuts).flatMap((chunk) => decoder.push(chunk));
        assert.deepEqual(frames, payloads);
      }),
      { seed, numRuns: 500 },
    );
  });

  it('random bytes, edited streams and prefixes around the MTU: frames within the MTU or FRAME_*', () => {
    const prefix = fc.oneof(
      fc.integer({ min: MTU - 2, max: 2 ** 21 - 1 }).map(encodeFrameHeader),
      fc.uint8Array({ minLength: 1, maxLength: 5 }).map((b) => b.map((x) => x | 0x80)), // never-ending prefixes
    );
    const edited = fc.tuple(fc.array(payload, { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat({ max: 255 })).map(([payloads, at, value]) => {
      const stream = frameStream(payloads);
      stream[at % stream.length] = value;
      return stream;
    });
    const input = fc.oneof(fc.uint8Array({ maxLength: 400 }), edited, fc.tuple(prefix, fc.uint8Array({ maxLength: 50 })).map(([p, rest]) => Uint8Array.from([...p, ...rest])));
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(input, fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
        const decoder = new FrameDecoder(MTU);
        let payloadBytes = 0;
        let outcome = 'frames';
        for (const chunk of split(bytes, cuts)) {
          let frames: Uint8Array[];
          try {
            frames = decoder.push(chunk);
          } catch (err) {
            assert.ok(err instanceof GatewayError, `threw ${String(err)}`);
            assert.match(err.code, /^FRAME_(OVERSIZED|MALFORMED)$/);
            outcome = err.code;
            break; // the stream is useless after an error
          }
          for (const f of frames) {
            assert.ok(f.length <= MTU);
            payloadBytes += f.length;
          }
        }
        assert.ok(payloadBytes <= bytes.length, 'no more payload than was pushed');
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }),
      { seed, numRuns: 3000 },
    );
    console.log(`      outcomes: ${[...outcomes].map(([k, n]) => `${k} ${n}`).join(', ')}`);
    assert.ok((outcomes.get('FRAME_OVERSIZED') ?? 0) > 0 && (outcomes.get('FRAME_MALFORMED') ?? 0) > 0);
  });

  it('beaconSender: any frame gives null or bytes 2..10 of a whole-beacon frame', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }).map((b) => Uint8Array.from([0x10, 0x11, ...b]))), (frame) => {
        const sender = beaconSender(frame);
        if (sender === null) return;
        assert.equal(sender.length, 8);
        assert.deepEqual([frame[0], frame[1]], [0x10, 0x11]);
        assert.deepEqual(sender, frame.subarray(2, 10));
      }),
      { seed, numRuns: 2000 },
    );
  });
});
