/** Delivery ratios are 1 only when everything arrived, overall and per kind of message. */
import assert from 'node:assert/strict';
import { channelDuty, DeliveryRecorder, deliveryRatio } from '../../simulations/metrics.ts';
import { expectedPairs, type Message, type World } from '../../simulations/world.ts';

/** Just what DeliveryRecorder reads of a world: the node count, the messages and the duration. */
function worldOf(nodes: number, messages: Omit<Message, 'index'>[]): World {
  return { scenario: { nodes }, durationMs: 2000, messages: messages.map((m, index) => ({ index, ...m })) } as unknown as World;
}

describe('simulations/metrics', () => {
  it('deliveryRatio rounds to 4 decimals but never up to 1 while something is missing', () => {
    assert.equal(deliveryRatio(99_995, 100_000), 0.9999);
    assert.equal(deliveryRatio(999_999, 1_000_000), 0.9999);
    assert.equal(deliveryRatio(100_000, 100_000), 1);
    assert.equal(deliveryRatio(0, 0), 1);
    assert.equal(deliveryRatio(1, 3), 0.3333);
    assert.equal(deliveryRatio(2, 3), 0.6667);
  });

  it("expects a chat or blog message at every node, its author's included, and a DM at its recipient (SPEC §5)", () => {
    const world = worldOf(3, [
      { time: 0, from: 0, kind: 'chat', to: -1, bytes: 10 },
      { time: 0, from: 1, kind: 'dm', to: 2, bytes: 10 },
    ]);
    assert.deepEqual(world.messages.map((m) => expectedPairs(m, 3)), [3, 1]);
    const recorder = new DeliveryRecorder(world);
    assert.equal(recorder.delivered, 1, 'the chat is at its author\'s node from the start');
    assert.equal(recorder.has(0, 0), true);
    recorder.deliver(0, 0, 500); // the author hearing its own message again changes nothing
    recorder.deliver(0, 1, 1000);
    recorder.deliver(1, 1, 1000); // a DM at a node that is not its recipient does not count
    assert.equal(recorder.delivered, 2);
    // Latency is measured over the air only: the author's own copy is not a 0 s delivery.
    assert.deepEqual([...recorder.latencies()], [1]);
    assert.deepEqual(recorder.ratioByKind(), { delivery_ratio_dm: 0, delivery_ratio_chat: 0.6667 });
  });

  it('the per-kind ratios of the detail follow the same rule', () => {
    const nodes = 20_001;
    const world = worldOf(nodes, [
      { time: 0, from: 0, kind: 'chat', to: -1, bytes: 10 },
      { time: 0, from: 1, kind: 'dm', to: 2, bytes: 10 },
    ]);
    const recorder = new DeliveryRecorder(world);
    // The chat is at its author's node and reaches all but one of the 20,000 others: 99.995%.
    for (let node = 1; node < nodes - 1; node++) recorder.deliver(0, node, 1000);
    recorder.deliver(1, 2, 1000);
    assert.deepEqual(recorder.ratioByKind(), { delivery_ratio_dm: 1, delivery_ratio_chat: 0.9999 });
    assert.equal(recorder.timeline(1)[0]!.ratio, 0.9999);
  });

  it('counts the nodes that spent their whole airtime allowance in some rolling hour', () => {
    // EU868's 10%, of which the governor allows half: 180 s in any hour.
    const world = { radio: { limits: { dutyCycle: 0.1 } } } as unknown as World;
    const channel = {
      size: 3,
      // Node 0: 180 s in one hour (at its cap); node 1: 170 s (short of it); node 2: 180 s spread over two hours.
      txStarts: [[0, 100_000], [0], [0, 3_600_000]],
      txLengths: [[90_000, 90_000], [170_000], [90_000, 90_000]],
    };
    assert.deepEqual(channelDuty(world, channel), { max: 0.05, violations: 0, nodesAtCap: 1 });
    assert.equal(channelDuty({ radio: { limits: { dutyCycle: 1 } } } as unknown as World, channel).nodesAtCap, 0, 'no duty cycle, no cap');
  });
});

