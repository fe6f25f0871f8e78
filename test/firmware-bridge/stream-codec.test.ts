/**
 * The Meshtastic stream framing (firmware-bridge/stream-codec.ts): known layouts, resync over
 * debug text and garbage, oversize headers, truncated frames, and seeded property/fuzz tests
 * (FC_SEED=<seed> replays them).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createStreamDecoder, encodeStreamFrame, MAX_FRAME_PAYLOAD } from '../../firmware-bridge/stream-codec.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);

function run<T>(property: fc.IProperty<T>, numRuns = 300): void {
  try {
    fc.assert(property, { seed, numRuns });
  } catch (err) {
    console.error(`stream-codec property failed; replay with FC_SEED=${seed}`);
    throw err;
  }
}

function decodeAll(chunks: Uint8Array[]) {
  const frames: Uint8Array[] = [];
  const lines: string[] = [];
  const decoder = createStreamDecoder({ onFrame: (f) => frames.push(f), onText: (l) => lines.push(l) });
  for (const c of chunks) decoder.push(c);
  return { frames, lines, decoder };
}

/** Splits `bytes` at the given cut points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const p of points) {
    out.push(bytes.slice(last, p));
    last = p;
  }
  out.push(bytes.slice(last));
  return out;
}

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

describe('firmware-bridge/stream-codec', () => {
  it('frames a payload as 0x94 0xC3, big-endian length, payload', () => {
    assert.deepEqual(encodeStreamFrame(Uint8Array.of(1, 2, 3)), Uint8Array.of(0x94, 0xc3, 0, 3, 1, 2, 3));
    const big = encodeStreamFrame(new Uint8Array(300));
    assert.deepEqual([...big.subarray(0, 4)], [0x94, 0xc3, 0x01, 0x2c]);
    assert.deepEqual(encodeStreamFrame(new Uint8Array(0)), Uint8Array.of(0x94, 0xc3, 0, 0));
    assert.throws(() => encodeStreamFrame(new Uint8Array(MAX_FRAME_PAYLOAD + 1)), { name: 'BridgeError', code: 'FRAME_TOO_LARGE' });
    assert.throws(() => encodeStreamFrame('x' as unknown as Uint8Array), { code: 'FRAME_INVALID' });
  });

  it('skips the debug text a device prints and hands it out as lines', () => {
    const text = new TextEncoder().encode('INFO  | 12:00:00 1 Booting\r\nDEBUG | radio ok\n');
    const { frames, lines, decoder } = decodeAll([text, encodeStreamFrame(Uint8Array.of(7)), new TextEncoder().encode('tail')]);
    assert.deepEqual(frames, [Uint8Array.of(7)]);
    assert.deepEqual(lines, ['INFO  | 12:00:00 1 Booting', 'DEBUG | radio ok']);
    assert.equal(decoder.stats().skippedBytes, text.length + 4);
    decoder.reset();
    assert.deepEqual(lines.at(-1), 'tail');
    assert.equal(decoder.pending, 0);
  });

  it('skips a header announcing more than 512 bytes and finds the next frame', () => {
    const bad = Uint8Array.of(0x94, 0xc3, 0x02, 0x01, 0xaa, 0xbb);
    const { frames, decoder } = decodeAll([bad, encodeStreamFrame(Uint8Array.of(5, 6))]);
    assert.deepEqual(frames, [Uint8Array.of(5, 6)]);
    assert.equal(decoder.stats().oversize, 1);
  });

  it('a lone START1 or a START1 not followed by START2 is skipped', () => {
    const { frames } = decodeAll([Uint8Array.of(0x94, 0x94, 0x01), Uint8Array.of(0x94), encodeStreamFrame(Uint8Array.of(9)).subarray(1)]);
    assert.deepEqual(frames, [Uint8Array.of(9)]);
  });

  it('a truncated frame waits; reset() on reconnect forgets it', () => {
    const frame = encodeStreamFrame(new Uint8Array(10).fill(3));
    const { frames, decoder } = decodeAll([frame.subarray(0, 8)]);
    assert.equal(frames.length, 0);
    assert.equal(decoder.pending, 8);
    decoder.reset();
    decoder.push(encodeStreamFrame(Uint8Array.of(1)));
    assert.deepEqual(frames, [Uint8Array.of(1)]);
  });

  it('property: frames split at any points decode to the same payloads', () => {
    run(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: MAX_FRAME_PAYLOAD }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (payloads, cuts) => {
          const { frames, decoder } = decodeAll(split(concat(payloads.map(encodeStreamFrame)), cuts));
          assert.deepEqual(frames, payloads);
          assert.equal(decoder.pending, 0);
          assert.equal(decoder.stats().skippedBytes, 0);
        },
      ),
    );
  });

  it('property: noise without START1 between frames is skipped, every frame recovered', () => {
    const noise = fc.uint8Array({ maxLength: 60 }).map((b) => b.map((x) => (x === 0x94 ? 0x20 : x)));
    run(
      fc.property(
        fc.array(fc.tuple(noise, fc.uint8Array({ maxLength: 80 })), { maxLength: 8 }),
        noise,
        fc.array(fc.nat(), { maxLength: 20 }),
        (pairs, trailing, cuts) => {
          const stream = concat([...pairs.flatMap(([n, p]) => [n, encodeStreamFrame(p)]), trailing]);
          const { frames, decoder } = decodeAll(split(stream, cuts));
          assert.deepEqual(frames, pairs.map(([, p]) => p));
          const noiseBytes = pairs.reduce((s, [n]) => s + n.length, 0) + trailing.length;
          assert.equal(decoder.stats().skippedBytes, noiseBytes);
        },
      ),
    );
  });

  it('fuzz: arbitrary bytes never throw and never hold more than one frame and one line', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 2000 }),
      fc.array(fc.oneof(fc.constant(Uint8Array.of(0x94, 0xc3)), fc.uint8Array({ maxLength: 6 }), fc.constant(Uint8Array.of(0x94, 0xc3, 0xff, 0xff))), { maxLength: 200 }).map(concat),
    );
    run(
      fc.property(bytes, fc.array(fc.nat(), { maxLength: 10 }), (stream, cuts) => {
        const { frames, decoder } = decodeAll(split(stream, cuts));
        for (const f of frames) assert.ok(f.length <= MAX_FRAME_PAYLOAD);
        assert.ok(decoder.pending <= 4 + MAX_FRAME_PAYLOAD + 1024, `pending ${decoder.pending}`);
        const s = decoder.stats();
        assert.equal(s.frames, frames.length);
      }),
      500,
    );
  });

  it('a handler that throws leaves the rest of the chunk for the next push', () => {
    const frames: Uint8Array[] = [];
    let fail = true;
    const decoder = createStreamDecoder({
      onFrame: (f) => {
        if (fail) {
          fail = false;
          throw new Error('listener bug');
        }
        frames.push(f);
      },
    });
    assert.throws(() => decoder.push(concat([encodeStreamFrame(Uint8Array.of(1)), encodeStreamFrame(Uint8Array.of(2))])), /listener bug/);
    decoder.push(new Uint8Array(0));
    decoder.push(encodeStreamFrame(Uint8Array.of(3)));
    assert.deepEqual(frames, [Uint8Array.of(2), Uint8Array.of(3)]);
  });
});
