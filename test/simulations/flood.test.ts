/** The Meshtastic managed-flooding baseline reproduces its firmware rules on small topologies. */
import assert from 'node:assert/strict';
import { createFloodStrategy } from '../../simulations/flood.ts';
import { DeliveryRecorder } from '../../simulations/metrics.ts';
import { createRandom } from '../../simulations/random.ts';
import { expectedPairs, type Message, type World } from '../../simulations/world.ts';
import { channelFor, quietWorld } from './helpers.ts';

/** A line of `n` nodes 400 m apart: with no shadowing each hears only its neighbours (range 577 m). */
const line = (n: number): [number, number][] => Array.from({ length: n }, (_, i) => [i * 400, 0]);

function flood(world: World, messages: Omit<Message, 'index'>[], hopLimit?: number) {
  world.messages = messages.map((m, index) => ({ index, ...m }));
  world.expected = world.messages.reduce((s, m) => s + expectedPairs(m, world.scenario.nodes), 0);
  const { sim, channel } = channelFor(world);
  const recorder = new DeliveryRecorder(world);
  const strategy = createFloodStrategy({ sim, channel, world, recorder, random: createRandom(7, 'flood') }, hopLimit === undefined ? {} : { hopLimit });
  for (const m of world.messages) sim.at(m.time, () => strategy.originate(m));
  sim.run(world.durationMs);
  return { strategy, recorder, channel };
}

describe('simulations/flood baseline', () => {
  it('on a 5-node line with hop limit 3 a broadcast is relayed exactly 3 times and reaches the end 3 hops away', () => {
    const { strategy, recorder, channel } = flood(quietWorld(line(5)), [{ time: 1000, from: 0, kind: 'chat', to: -1, bytes: 40 }]);
    assert.deepEqual([1, 2, 3, 4].map((i) => strategy.hopsHeard[i]![0]), [0, 1, 2, 3]);
    assert.equal(recorder.delivered, 5, 'at the author and the 4 others');
    // Origin, then nodes 1, 2 and 3 rebroadcast; node 4 hears hop_limit 0 and stays quiet.
    assert.equal(channel.stats.frames, 4);
    assert.equal(strategy.detail!().rebroadcasts, 3);
  });

  it('hop limit is a hard stop: with hop limit 2 the fifth node, and on a 6-node line the sixth, never hear it', () => {
    const short = flood(quietWorld(line(5)), [{ time: 1000, from: 0, kind: 'chat', to: -1, bytes: 40 }], 2);
    assert.equal(short.recorder.has(0, 3), true);
    assert.equal(short.recorder.has(0, 4), false);
    const long = flood(quietWorld(line(6)), [{ time: 1000, from: 0, kind: 'chat', to: -1, bytes: 40 }]);
    assert.equal(long.recorder.has(0, 4), true);
    assert.equal(long.recorder.has(0, 5), false);
  });

  it('a DM is not rebroadcast by its recipient', () => {
    const { recorder, channel } = flood(quietWorld(line(5)), [{ time: 1000, from: 0, kind: 'dm', to: 2, bytes: 40 }]);
    assert.equal(recorder.delivered, 1);
    // Origin, node 1 relays, node 2 receives and keeps it, node 3 hears node 2 never: 2 frames.
    assert.equal(channel.stats.frames, 2);
  });

  it('reports delivery per kind of message: which traffic a crowded channel sheds', () => {
    // Node 4 is 4 hops from node 0: the DM to node 2 arrives, the one to node 4 does not; the chat
    // reaches 3 of the 4 others (and is at its author's node: 4 of 5).
    const { recorder } = flood(quietWorld(line(5)), [
      { time: 1000, from: 0, kind: 'dm', to: 2, bytes: 40 },
      { time: 60_000, from: 0, kind: 'dm', to: 4, bytes: 40 },
      { time: 120_000, from: 4, kind: 'chat', to: -1, bytes: 40 },
    ], 2);
    assert.deepEqual(recorder.ratioByKind(), { delivery_ratio_dm: 0.5, delivery_ratio_chat: 0.8 });
  });

  it('cancels a queued rebroadcast on hearing a duplicate', () => {
    // Four nodes all in range of each other: after the first rebroadcast the others cancel theirs.
    const { strategy, channel } = flood(quietWorld([[0, 0], [100, 0], [0, 100], [100, 100]]), [{ time: 1000, from: 0, kind: 'chat', to: -1, bytes: 40 }]);
    assert.equal(channel.stats.frames, 2);
    assert.equal(strategy.detail!().cancelled_rebroadcasts, 2);
  });

  it('splits a long body into packets and delivers when every part is in', () => {
    const { recorder, channel } = flood(quietWorld(line(2)), [{ time: 1000, from: 0, kind: 'chat', to: -1, bytes: 300 }]);
    assert.equal(recorder.has(0, 1), true);
    assert.equal(recorder.delivered, 2);
    assert.equal(channel.stats.frames, 4); // two parts, each sent and rebroadcast once
  });
});
