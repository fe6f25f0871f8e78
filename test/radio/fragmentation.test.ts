/** Fragmentation: codec, roundtrips, loss/reorder/duplication, bounded state under a fragment storm, decoder fuzz. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RadioError } from '../../radio/errors.ts';
import {
  createFragmenter,
  createReassembler,
  decodeFragment,
  encodeFragment,
  FRAGMENT_HEADER_BYTES,
  splitMessage,
} from '../../radio/fragmentation.ts';
import { seededRandom, shuffle } from '../helpers/random.ts';

const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);

function manualClock(start = 0) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

function bytes(length: number, random: (n: number) => Uint8Array): Uint8Array {
  return random(length);
}

describe('radio/fragmentation', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('encodes the documented byte layout', () => {
    assert.deepEqual([...encodeFragment({ kind: 'whole', payload: Uint8Array.of(7, 8) })], [0x10, 7, 8]);
    assert.deepEqual(
      [...encodeFragment({ kind: 'fragment', messageId: 0x01020304, index: 2, count: 0x0105, chunk: Uint8Array.of(0xaa) })],
      [0x11, 1, 2, 3, 4, 0, 2, 1, 5, 0xaa],
    );
    assert.deepEqual(decodeFragment(Uint8Array.of(0x10)), { kind: 'whole', payload: new Uint8Array(0) });
  });

  it('costs one byte of header for a message that fits one frame', () => {
    const frames = splitMessage(new Uint8Array(254), 255, 1);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.length, 255);
    const split = splitMessage(new Uint8Array(255), 255, 1);
    assert.equal(split.length, 2);
    assert.ok(split.every((f) => f.length <= 255));
  });

  it('refuses malformed frames with typed errors', () => {
    const cases: [number[], string][] = [
      [[], 'FRAME_TRUNCATED'],
      [[0x20, 1], 'FRAGMENT_VERSION_UNKNOWN'],
      [[0x12, 1], 'FRAGMENT_KIND_UNKNOWN'],
      [[0x11, 0, 0, 0, 1, 0, 0, 0], 'FRAME_TRUNCATED'],
      [[0x11, 0, 0, 0, 1, 0, 0, 0, 2], 'FRAGMENT_INVALID'], // empty chunk
      [[0x11, 0, 0, 0, 1, 0, 2, 0, 2, 9], 'FRAGMENT_INVALID'], // index = count
      [[0x11, 0, 0, 0, 1, 0, 0, 0, 1, 9], 'FRAGMENT_INVALID'], // count 1
    ];
    for (const [frame, code] of cases) assert.throws(() => decodeFragment(Uint8Array.from(frame)), { code }, JSON.stringify(frame));
    assert.throws(() => splitMessage(new Uint8Array(100), FRAGMENT_HEADER_BYTES, 1), { code: 'MTU_TOO_SMALL' });
    // MTU 10 leaves 1-byte chunks: 65,536 bytes would need 65,536 fragments, one more than the count field holds.
    assert.throws(() => splitMessage(new Uint8Array(65_536), 10, 1), { code: 'MESSAGE_TOO_LARGE' });
    assert.throws(() => encodeFragment({ kind: 'fragment', messageId: -1, index: 0, count: 2, chunk: Uint8Array.of(1) }), {
      code: 'FRAGMENT_INVALID',
    });
    const fragmenter = createFragmenter({ mtu: 255, maxMessageBytes: 1000 }, { random: seededRandom(1) });
    assert.throws(() => fragmenter.split(new Uint8Array(1001)), { code: 'MESSAGE_TOO_LARGE' });
  });

  it('round-trips random sizes and MTUs (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 11, max: 300 }), fc.integer(), (size, mtu, s) => {
        const message = bytes(Math.min(size, 65_536), seededRandom(s));
        const fragmenter = createFragmenter({ mtu }, { random: seededRandom(s) });
        const frames = fragmenter.split(message);
        assert.ok(frames.every((f) => f.length <= mtu));
        const reassembler = createReassembler({ maxBytesHeld: 1 << 24, maxFragments: 1 << 16 }, { clock: manualClock() });
        const out = frames.map((f) => reassembler.receive('a', f));
        assert.deepEqual(out.at(-1), message);
        assert.ok(out.slice(0, -1).every((m) => m === undefined));
        assert.equal(reassembler.stats().bytesHeld, 0);
      }),
      { seed, numRuns: 60 },
    );
  });

  it('delivers each complete message exactly once through loss, reordering and duplication (property)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 20, max: 255 }), fc.double({ min: 0, max: 0.3, noNaN: true }), (s, mtu, lossRate) => {
        const random = seededRandom(s);
        const unit = () => random(1)[0]! / 256;
        const senders = ['rose', 'lilac', 'oak'];
        /** Hex of every message we expect out: complete multi-frame ones once, single frames once per copy. */
        const expected: string[] = [];
        let frames: { sender: string; frame: Uint8Array }[] = [];
        for (const sender of senders) {
          const fragmenter = createFragmenter({ mtu }, { random });
          for (let m = 0; m < 5; m++) {
            const message = random(Math.floor(unit() * 3000));
            const parts = fragmenter.split(message);
            let complete = true;
            for (const frame of parts) {
              const copies = unit() < lossRate ? 0 : 1 + Math.floor(unit() * 3);
              for (let c = 0; c < copies; c++) frames.push({ sender, frame });
              if (copies === 0) complete = false;
              // Single-frame messages carry no id: duplicates are the upper layer's to drop.
              if (parts.length === 1) for (let c = 0; c < copies; c++) expected.push(Buffer.from(message).toString('hex'));
            }
            if (parts.length > 1 && complete) expected.push(Buffer.from(message).toString('hex'));
          }
        }
        frames = shuffle(frames, random);
        const clock = manualClock();
        const reassembler = createReassembler(
          { maxPartialsPerSender: 100, maxPartials: 100, maxBytesHeld: 1 << 24, timeoutMs: 60_000 },
          { clock },
        );
        const got: Uint8Array[] = [];
        for (const { sender, frame } of frames) {
          clock.advance(10);
          const message = reassembler.receive(sender, frame);
          if (message) got.push(message);
        }
        const delivered = got.map((m) => Buffer.from(m).toString('hex')).sort();
        assert.ok(delivered.length === expected.length && delivered.join() === expected.sort().join(), `delivered ${delivered.length} of ${expected.length} expected`);
        clock.advance(60_000);
        reassembler.expire();
        const stats = reassembler.stats();
        assert.equal(stats.partials, 0);
        assert.equal(stats.bytesHeld, 0);
      }),
      { seed, numRuns: 100 },
    );
  });

  it('refuses conflicting fragments, too many fragments and oversized messages', () => {
    const r = createReassembler({ maxFragments: 8, maxMessageBytes: 100 }, { clock: manualClock() });
    const frag = (messageId: number, index: number, count: number, chunk: number[]) =>
      encodeFragment({ kind: 'fragment', messageId, index, count, chunk: Uint8Array.from(chunk) });
    assert.equal(r.receive('x', frag(1, 0, 3, [1])), undefined);
    r.receive('x', frag(1, 1, 4, [2]));
    assert.equal(r.stats().dropped.conflict, 1);
    r.receive('x', frag(1, 0, 3, [9]));
    assert.equal(r.stats().dropped.conflict, 2);
    r.receive('x', frag(1, 0, 3, [1]));
    assert.equal(r.stats().dropped.duplicate, 1);
    r.receive('x', frag(2, 0, 9, [1]));
    assert.equal(r.stats().dropped['too-many-fragments'], 1);
    r.receive('x', frag(3, 0, 2, new Array(60).fill(1)));
    r.receive('x', frag(3, 1, 2, new Array(60).fill(1)));
    assert.equal(r.stats().dropped['too-large'], 1);
    // The same id from another sender is another message.
    r.receive('y', frag(1, 0, 2, [5]));
    assert.deepEqual(r.receive('y', frag(1, 1, 2, [6])), Uint8Array.of(5, 6));
    // A late duplicate of a delivered message is not delivered again.
    assert.equal(r.receive('y', frag(1, 1, 2, [6])), undefined);
    assert.equal(r.stats().dropped.duplicate, 2);
    r.receive('x', Uint8Array.of(0xff));
    assert.equal(r.stats().dropped.malformed, 1);
  });

  it('expires incomplete messages on the injected clock', () => {
    const clock = manualClock();
    const r = createReassembler({ timeoutMs: 1_000 }, { clock });
    const [first, second] = splitMessage(new Uint8Array(100), 60, 7);
    r.receive('x', first!);
    clock.advance(999);
    r.expire();
    assert.equal(r.stats().partials, 1);
    clock.advance(1);
    r.expire();
    assert.deepEqual({ partials: r.stats().partials, bytes: r.stats().bytesHeld, expired: r.stats().dropped.expired }, { partials: 0, bytes: 0, expired: 1 });
    assert.equal(r.receive('x', second!), undefined);
  });

  it('keeps at most maxPartialsPerSender partials of one sender, evicting its oldest', () => {
    const r = createReassembler({ maxPartialsPerSender: 2 }, { clock: manualClock() });
    const messages = [1, 2, 3].map((id) => splitMessage(new Uint8Array(100).fill(id), 60, id));
    for (const frames of messages) r.receive('x', frames[0]!);
    assert.equal(r.stats().partials, 2);
    assert.equal(r.stats().dropped.evicted, 1);
    assert.equal(r.receive('x', messages[0]![1]!), undefined); // evicted: starts again, incomplete
    assert.deepEqual(r.receive('x', messages[2]![1]!), new Uint8Array(100).fill(3));
  });

  it('stays within its memory bound under a fragment storm, and honest traffic gets through', () => {
    const random = seededRandom(seed);
    const maxBytesHeld = 16_384;
    const r = createReassembler({ maxBytesHeld, maxPartials: 32, maxPartialsPerSender: 8, maxFragments: 1024 }, { clock: manualClock() });
    const honest = createFragmenter({ mtu: 200 }, { random });
    const deliveredHonest: Uint8Array[] = [];
    const honestMessages: Uint8Array[] = [];
    for (let round = 0; round < 20; round++) {
      const message = random(1_500);
      honestMessages.push(message);
      const frames = honest.split(message);
      for (const frame of frames) {
        // Fifty hostile frames between each honest one: random ids, counts and sizes.
        for (let i = 0; i < 50; i++) {
          const b = random(8);
          const count = 2 + (b[0]! | (b[1]! << 8)) % 1023;
          const hostile = encodeFragment({
            kind: 'fragment',
            messageId: (b[2]! << 8) | b[3]!,
            index: ((b[4]! << 8) | b[5]!) % count,
            count,
            chunk: random(1 + (b[6]! % 200)),
          });
          r.receive(`hostile-${b[7]! % 3}`, hostile);
          const stats = r.stats();
          assert.ok(stats.bytesHeld <= maxBytesHeld, `held ${stats.bytesHeld}`);
          assert.ok(stats.partials <= 32);
        }
        const message = r.receive('honest', frame);
        if (message) deliveredHonest.push(message);
      }
    }
    assert.deepEqual(deliveredHonest, honestMessages);
    assert.ok(r.stats().dropped.evicted > 0);
  });

  it('decodes any bytes with nothing but a RadioError, and re-encodes what it accepts (fuzz)', () => {
    const valid = splitMessage(seededRandom(seed)(600), 100, 0xdeadbeef);
    const mutated = fc
      .tuple(fc.constantFrom(...valid), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 110 }))
      .map(([frame, at, value, cut]) => {
        const copy = frame.slice(0, cut);
        if (at < copy.length) copy[at] = value;
        return copy;
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), (frame) => {
        try {
          const decoded = decodeFragment(frame);
          assert.deepEqual(encodeFragment(decoded), frame);
        } catch (error) {
          if (!(error instanceof RadioError)) throw error;
          assert.ok(typeof error.code === 'string');
        }
      }),
      { seed, numRuns: 2000 },
    );
    const r = createReassembler({}, { clock: manualClock() });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (frame) => void r.receive('fuzz', frame)), { seed, numRuns: 2000 });
    assert.ok(r.stats().bytesHeld <= 262_144);
  });
});
