/**
 * The simulator's links run the shared `Link` contract suite (test/radio/link.contract.ts):
 * SimLink (a LoRa radio on the simulated channel, with the real duty-cycle governor) and
 * InternetLink (gateways). Virtual time is pumped from real time in the background so the
 * contract's real-time waits see frames arrive; the pump's timer is unref'd.
 */
import assert from 'node:assert/strict';
import { createDutyCycleGovernor } from '../../radio/duty-cycle.ts';
import type { Clock } from '../../radio/link.ts';
import { findPreset } from '../../radio/lora-airtime.ts';
import type { Simulator } from '../../simulations/engine.ts';
import { InternetHub } from '../../simulations/internet-link.ts';
import { createRandom } from '../../simulations/random.ts';
import { SimLink } from '../../simulations/sim-link.ts';
import { describeLinkContract } from '../radio/link.contract.ts';
import { channelFor, quietWorld } from './helpers.ts';

/** Run virtual time forward, 10 s per real millisecond, until the process has nothing else to do. */
function pump(sim: Simulator): void {
  const step = async (): Promise<void> => {
    await sim.runAsync(sim.now + 10_000);
    setTimeout(() => void step(), 1).unref();
  };
  void step();
}

describeLinkContract('simulated LoRa (SimLink, LongFast, EU868 governor)', {
  async create(clock: Clock) {
    const world = quietWorld([[0, 0], [100, 0], [0, 100]]);
    const { sim, channel } = channelFor(world);
    const links = [0, 1, 2].map(
      (node) =>
        new SimLink({
          node,
          sim,
          channel,
          preset: findPreset('LongFast'),
          governor: createDutyCycleGovernor({ dutyCycle: 0.1 }, { clock: sim.clock, timer: sim.timer }),
          random: createRandom(node, 'link'),
          clock,
        }),
    );
    links.forEach((link, node) => channel.attach(node, (tx, rssi, snr) => link.deliver(tx, rssi, snr)));
    pump(sim);
    return links;
  },
  async stopAndCheckReleased(link) {
    await link.stop();
  },
});

describeLinkContract('simulated internet between gateways (InternetLink)', {
  async create(clock: Clock) {
    const { sim } = channelFor(quietWorld([[0, 0]]));
    const hub = new InternetHub(sim, clock);
    const links = [0, 1, 2].map((node) => hub.attach(node, true));
    pump(sim);
    return links;
  },
  async stopAndCheckReleased(link) {
    await link.stop();
  },
});

/** Node 0's LongFast radio on a quiet two-node channel (node 1 100 m away), not started. */
function pairLink(seed: number) {
  const { sim, channel } = channelFor(quietWorld([[0, 0], [100, 0]]));
  const link = new SimLink({
    node: 0,
    sim,
    channel,
    preset: findPreset('LongFast'),
    governor: createDutyCycleGovernor({ dutyCycle: 0.1 }, { clock: sim.clock, timer: sim.timer }),
    random: createRandom(seed, 'pair'),
  });
  return { sim, channel, link };
}

describe('simulations/SimLink and churn', () => {
  it("goes 'down' when its node powers off and 'up' when it is back; a send waiting then rejects", async () => {
    const { sim, channel, link } = pairLink(1);
    const events: string[] = [];
    link.on('up', () => events.push('up'));
    link.on('down', () => events.push('down'));
    await link.start();
    // The other node transmits a long frame, so ours waits (listen before talk) while its node powers off.
    channel.transmit(1, 255, 2000, null);
    const sending = link.send(Uint8Array.of(1, 2, 3));
    const outcome = sending.then(
      () => 'sent',
      (err: { code?: string }) => err.code,
    );
    sim.at(500, () => {
      channel.setOnline(0, false);
      link.setPowered(false);
    });
    sim.at(5000, () => {
      channel.setOnline(0, true);
      link.setPowered(true);
    });
    await sim.runAsync(10_000);
    assert.equal(await outcome, 'LINK_DOWN');
    assert.deepEqual(events, ['up', 'down', 'up']);
    assert.equal(link.up, true);
    assert.equal(channel.stats.frames, 1);
  });

  it('asks beforeAir once the channel is clear and abandons the frame when it says no', async () => {
    const { sim, channel, link } = pairLink(2);
    await link.start();
    // The other node is on air for 2 s: both sends wait, then one is abandoned, one goes.
    channel.transmit(1, 255, 2000, null);
    const askedAt: number[] = [];
    const abandoned = link.send(Uint8Array.of(1), { beforeAir: () => (askedAt.push(sim.now), false) });
    const sent = link.send(Uint8Array.of(2), { beforeAir: () => (askedAt.push(sim.now), true) });
    await sim.runAsync(10_000);
    await Promise.all([abandoned, sent]);
    assert.equal(askedAt.length, 2);
    assert.ok(askedAt[0]! >= 2000, `asked at ${askedAt[0]} ms, while the channel was busy`);
    assert.equal(channel.stats.frames, 2, 'the other node\'s frame and ours, not the abandoned one');
    assert.equal(link.stats().framesOut, 1);
  });
});
