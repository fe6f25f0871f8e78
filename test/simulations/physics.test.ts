/** The radio model against hand-computed cases (SPEC §5, issue 4). */
import assert from 'node:assert/strict';
import { createDutyCycleGovernor } from '../../radio/duty-cycle.ts';
import { findPreset, loraAirtimeMs } from '../../radio/lora-airtime.ts';
import { dutyCycleOf } from '../../simulations/metrics.ts';
import { createRandom } from '../../simulations/random.ts';
import { noiseFloorDbm, pathLossDb, sensitivityDbm } from '../../simulations/radio-model.ts';
import { DEFAULT_PATH_LOSS } from '../../simulations/scenario.ts';
import { SimLink } from '../../simulations/sim-link.ts';
import { channelFor, quietWorld, recordReceptions } from './helpers.ts';

const LONG_FAST = findPreset('LongFast');
// By hand: −174 + 10·log10(250 000) + 6 − 17.5 = −174 + 53.979 + 6 − 17.5 = −131.521 dBm.
const SENSITIVITY = -131.521;
// Range where 20 dBm − PL(d) = sensitivity: d = 40 · 10^((20 + 131.521 − 127.41) / 20.8) = 577.2 m.
const RANGE_M = 577.2;

describe('simulations/radio model', () => {
  it('sensitivity, noise floor and path loss match hand-computed values', () => {
    assert.ok(Math.abs(sensitivityDbm(LONG_FAST) - SENSITIVITY) < 0.001);
    assert.ok(Math.abs(noiseFloorDbm(125_000) - -117.031) < 0.001);
    // SF12/125 kHz: −174 + 50.969 + 6 − 20 = −137.031.
    assert.ok(Math.abs(sensitivityDbm(findPreset('LongSlow')) - -137.031) < 0.001);
    assert.equal(pathLossDb(40, DEFAULT_PATH_LOSS), 127.41);
    // 400 m: 127.41 + 20.8 · log10(10) = 148.21 dB.
    assert.ok(Math.abs(pathLossDb(400, DEFAULT_PATH_LOSS) - 148.21) < 1e-9);
    assert.ok(Math.abs(pathLossDb(400, DEFAULT_PATH_LOSS, 3) - 151.21) < 1e-9);
  });

  it('hears a link just inside sensitivity and not one just outside', () => {
    const world = quietWorld([[0, 0], [RANGE_M - 5, 0], [-(RANGE_M + 5), 0]]);
    const { sim, channel } = channelFor(world);
    const got = recordReceptions(channel);
    channel.transmit(0, 50, loraAirtimeMs(LONG_FAST, 50), null);
    sim.run(10_000);
    assert.deepEqual(got, [[1, 0]]);
    assert.equal(channel.neighboursOf(0).length, 1);
  });

  it('two overlapping frames: the one 6 dB stronger survives (capture), equal ones both die', () => {
    // Receiver 0; sender 1 at 100 m (−100.4 dBm), sender 2 at 500 m (−114.9 dBm): 14.5 dB apart.
    const capture = quietWorld([[0, 0], [100, 0], [0, 500]]);
    let { sim, channel } = channelFor(capture);
    let got = recordReceptions(channel);
    channel.transmit(1, 50, 600, null);
    channel.transmit(2, 50, 600, null);
    sim.run(10_000);
    assert.deepEqual(got, [[0, 1]]);
    assert.equal(channel.stats.collisions, 1);

    // 300 m and 330 m: 0.86 dB apart, no capture, both lost at the receiver.
    const equal = quietWorld([[0, 0], [300, 0], [0, 330]]);
    ({ sim, channel } = channelFor(equal));
    got = recordReceptions(channel);
    channel.transmit(1, 50, 600, null);
    sim.after(100, () => channel.transmit(2, 50, 600, null));
    sim.run(10_000);
    assert.deepEqual(got.filter(([to]) => to === 0), []);
    assert.equal(channel.stats.collisions, 2);
  });

  it('a stronger frame captures the receiver during a weaker preamble, not after it', () => {
    const world = quietWorld([[0, 0], [100, 0], [0, 500]]);
    for (const [delay, expected] of [[world.preambleMs - 10, [[0, 1]]], [world.preambleMs + 10, []]] as const) {
      const { sim, channel } = channelFor(world);
      const got = recordReceptions(channel);
      channel.transmit(2, 50, 1000, null); // weak first
      sim.after(delay, () => channel.transmit(1, 50, 600, null)); // strong second
      sim.run(10_000);
      assert.deepEqual(got.filter(([to]) => to === 0), expected, `strong frame ${delay} ms after the weak one`);
    }
  });

  it('a frame too weak to be heard does not hold the receiver: a stronger later one survives, after its preamble too', () => {
    // Node 2 is 800 m away: below sensitivity (575 m) but within 6 dB of it (1,119 m), so it interferes.
    const world = quietWorld([[0, 0], [100, 0], [800, 0]]);
    for (const delay of [world.preambleMs - 10, world.preambleMs + 10, 400]) {
      const { sim, channel } = channelFor(world);
      const got = recordReceptions(channel);
      channel.transmit(2, 50, 1000, null); // too weak to lock onto, first
      sim.after(delay, () => channel.transmit(1, 50, 300, null)); // strong, later
      sim.run(10_000);
      assert.deepEqual(got.filter(([to]) => to === 0), [[0, 1]], `strong frame ${delay} ms after the weak one`);
    }
    // Within 6 dB of a frame that is heard, the later one still dies with it.
    const close = quietWorld([[0, 0], [500, 0], [560, 0]]);
    const { sim, channel } = channelFor(close);
    const got = recordReceptions(channel);
    channel.transmit(2, 50, 1000, null);
    sim.after(close.preambleMs + 10, () => channel.transmit(1, 50, 300, null));
    sim.run(10_000);
    assert.deepEqual(got.filter(([to]) => to === 0), []);
  });

  it('half duplex: a node that starts sending loses the frame it was hearing', () => {
    const world = quietWorld([[0, 0], [200, 0]]);
    const { sim, channel } = channelFor(world);
    const got = recordReceptions(channel);
    channel.transmit(1, 50, 600, null);
    sim.after(100, () => channel.transmit(0, 50, 600, null));
    sim.run(10_000);
    assert.deepEqual(got, []);
    assert.equal(channel.stats.halfDuplexLosses, 2);
  });

  it('partitions cut links across the line only while active', () => {
    const world = quietWorld([[0, 0], [200, 0]], { partitions: [{ from_s: 10, until_s: 20, cut_x_m: 100 }] });
    const { sim, channel } = channelFor(world);
    const got = recordReceptions(channel);
    sim.at(5_000, () => channel.transmit(0, 20, 300, null));
    sim.at(15_000, () => channel.transmit(0, 20, 300, null));
    sim.at(25_000, () => channel.transmit(0, 20, 300, null));
    sim.run(30_000);
    assert.equal(got.length, 2);
  });

  it('a node that would exceed the duty cycle is held back by the real governor', async () => {
    const world = quietWorld([[0, 0], [200, 0]]);
    const { sim, channel } = channelFor(world);
    const governor = createDutyCycleGovernor({ dutyCycle: world.radio.limits.dutyCycle }, { clock: sim.clock, timer: sim.timer });
    const link = new SimLink({ node: 0, sim, channel, preset: LONG_FAST, governor, random: createRandom(1, 't') });
    await link.start();
    const frame = new Uint8Array(255);
    // 120 frames × 2156.5 ms = 258.8 s, over the 180 s a node may use per hour (half of 10%).
    const sent: number[] = [];
    for (let k = 0; k < 120; k++) void link.send(frame).then(() => sent.push(sim.now));
    await sim.runAsync(3 * 3_600_000);
    assert.equal(sent.length, 120);
    assert.equal(link.stats().framesOut, 120);
    assert.ok(sent[119]! > 3_600_000, 'the last frames waited for the window to roll');
    const d = dutyCycleOf(channel.txStarts[0]!, channel.txLengths[0]!, 3_600_000, 0.1);
    assert.equal(d.violations, 0);
    assert.ok(d.max <= 0.05 + 1e-9, `max duty cycle ${d.max}`);
    // The same log measured against a 5% legal limit with a 4.9% cap shows violations.
    assert.ok(dutyCycleOf(channel.txStarts[0]!, channel.txLengths[0]!, 3_600_000, 0.049).violations > 0);
  });

  it('measures the duty cycle over rolling windows, not calendar hours', () => {
    // 100 s at the end of hour 1 and 100 s at the start of hour 2: 200 s within one rolling hour.
    const starts = [3_500_000, 3_600_000];
    const lengths = [100_000, 100_000];
    const d = dutyCycleOf(starts, lengths, 3_600_000, 0.05);
    assert.ok(Math.abs(d.max - 200 / 3600) < 1e-9);
    assert.equal(d.violations, 1);
  });
});
