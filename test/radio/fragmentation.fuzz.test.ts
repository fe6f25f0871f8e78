/**
 * Reassembly against mutated fragments of real messages (fast-check; the seed is printed and
 * FC_SEED=<seed> replays it), beyond the random frames of fragmentation.test.ts: the frames of
 * a few real messages, with bit flips and byte changes in their headers (message id, index,
 * count) and chunks, truncations, duplicates, and frames of other messages spliced in, from
 * two senders, in any order. The reassembler never throws, holds no more than its bounds,
 * delivers nothing larger than maxMessageBytes, and an untouched message whose frames all
 * arrive is delivered intact.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createReassembler, decodeFragment, splitMessage } from '../../radio/fragmentation.ts';
import { equalBytes } from '../../mesh/bytes.ts';
import { seededRandom } from '../helpers/random.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const random = seededRandom(seed);
const messages = [random(700), random(2000), random(240), random(5000)];
const MTU = 233;

describe('radio/fragmentation reassembly (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('mutated, truncated, duplicated and reordered fragments: no throw, bounded, the untouched message intact', () => {
    const edit = fc.tuple(fc.nat(), fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('flip', 'set', 'cut', 'dup', 'header'));
    let deliveredIntact = 0;
    fc.assert(
      fc.property(fc.nat(messages.length - 1), fc.array(edit, { minLength: 1, maxLength: 8 }), fc.nat(), (keep, edits, order) => {
        const maxBytesHeld = 16_384;
        const maxMessageBytes = 4096;
        const reassembler = createReassembler({ maxBytesHeld, maxMessageBytes, maxPartials: 8, maxPartialsPerSender: 4 }, { clock: { now: () => 0 } });
        // Message `keep` goes untouched from sender A; the others, mutated, from sender H.
        const hostile: Uint8Array[] = messages.flatMap((m, i) => (i === keep ? [] : splitMessage(m, MTU, 1000 + i)));
        for (const [which, at, value, how] of edits) {
          const j = which % hostile.length;
          const f = hostile[j]!.slice();
          const i = how === 'header' ? at % Math.min(9, f.length) : at % f.length;
          if (how === 'flip' || how === 'header') f[i]! ^= 1 << value % 8;
          else if (how === 'set') f[i] = value;
          if (how === 'cut') hostile[j] = f.subarray(0, i);
          else if (how === 'dup') hostile.push(f);
          else hostile[j] = f;
        }
        const honest = splitMessage(messages[keep]!, MTU, 1000 + keep);
        const frames = [...honest.map((f) => ['A', f] as const), ...hostile.map((f) => ['H', f] as const)];
        // A fixed pseudo-random interleaving per run (`order`), honest and hostile frames mixed.
        const shuffled = frames.map((f, i) => [f, (i * 7919 + order) % 104_729] as const).sort((a, b) => a[1] - b[1]).map(([f]) => f);
        let intact = false;
        for (const [sender, frame] of shuffled) {
          const message = reassembler.receive(sender, frame);
          if (message) {
            assert.ok(message.length <= maxMessageBytes || (decodeFragmentKind(frame) === 'whole' && message.length <= MTU), `delivered ${message.length} bytes`);
            if (sender === 'A' && equalBytes(message, messages[keep]!)) intact = true;
          }
          const stats = reassembler.stats();
          assert.ok(stats.bytesHeld <= maxBytesHeld, `holds ${stats.bytesHeld} bytes`);
          assert.ok(stats.partials <= 8);
        }
        if (messages[keep]!.length <= maxMessageBytes) {
          assert.ok(intact, 'the untouched message arrived intact');
          deliveredIntact++;
        }
      }),
      { seed, numRuns: 1000 },
    );
    assert.ok(deliveredIntact > 0);
  });
});

function decodeFragmentKind(frame: Uint8Array): string {
  try {
    return decodeFragment(frame).kind;
  } catch {
    return 'invalid';
  }
}
