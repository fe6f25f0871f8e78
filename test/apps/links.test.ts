/**
 * `--link` specs become links behind the right duty-cycle governor (apps/daemon/links.ts).
 */
import assert from 'node:assert/strict';
import { openLinks } from '../../apps/daemon/links.ts';
import { AppError } from '../../apps/errors.ts';
import { monotonicClock } from '../../radio/duty-cycle.ts';
import { loraAirtimeMs, findPreset } from '../../radio/lora-airtime.ts';

describe('apps/daemon/links', () => {
  it('builds a plain UDP link with no governor, and an emulated LoRa link gated by its region', async () => {
    const clock = { now: () => Date.now() };
    const [plain, lora] = openLinks(
      ['udp://127.0.0.1:0?peer=127.0.0.1:9', 'udp://127.0.0.1:0?peer=127.0.0.1:9&preset=ShortTurbo&region=EU868'],
      { clock },
    );
    assert.equal(plain!.governor, null);
    assert.equal(plain!.link.mtu, 1200);
    assert.equal(lora!.region, 'EU_868');
    assert.equal(lora!.link.mtu, 255);
    await lora!.link.start();
    try {
      await lora!.link.send(new Uint8Array(100));
      // Timers run in whole milliseconds: the send may resolve up to 1 ms before the frame's end.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const used = lora!.governor!.used();
      assert.ok(Math.abs(used.airtimeMs - loraAirtimeMs(findPreset('ShortTurbo'), 100)) < 0.01, String(used.airtimeMs));
    } finally {
      await lora!.link.stop();
    }
  });

  it('counts airtime in real time: setting the wall clock forward does not give a second budget within the hour', async () => {
    let wallMs = Date.UTC(2026, 10, 27, 8, 0);
    const [lora] = openLinks(['udp://127.0.0.1:0?peer=127.0.0.1:9&preset=ShortTurbo&region=EU868'], { clock: { now: () => wallMs } });
    await lora!.link.start();
    try {
      await lora!.link.send(new Uint8Array(100));
      await new Promise((resolve) => setTimeout(resolve, 5));
      const before = lora!.governor!.used().airtimeMs;
      assert.ok(before > 0);
      wallMs += 6 * 3_600_000; // the Pi learns the time after a power cut
      assert.equal(lora!.governor!.used().airtimeMs, before, 'the frame sent a moment ago still counts');
    } finally {
      await lora!.link.stop();
    }
    assert.ok(Math.abs(monotonicClock.now() - Date.now()) < 60_000, 'the airtime clock reads about the epoch time');
  });

  it('assumes EU868 for an emulated radio without a region, and refuses bad specs with a usage error', () => {
    const [lora] = openLinks(['udp://127.0.0.1:0?peer=127.0.0.1:9&preset=LongFast'], { clock: { now: () => 0 } });
    assert.equal(lora!.region, 'EU_868');
    assert.throws(() => openLinks(['udp://127.0.0.1:0?peer=127.0.0.1:9&preset=LongFast&region=MARS'], { clock: { now: () => 0 } }), (e: AppError) => e.code === 'USAGE' && /MARS/.test(e.message));
    assert.throws(() => openLinks(['carrier-pigeon://loft'], { clock: { now: () => 0 } }), (e: AppError) => e.code === 'USAGE');
    assert.throws(() => openLinks(['meshtastic+tcp://127.0.0.1:4403'], { clock: { now: () => 0 } }), (e: AppError) => e.code === 'NOT_AVAILABLE');
  });

  it('refuses two links bound to one UDP address (the second could never come up)', () => {
    const clock = { now: () => 0 };
    assert.throws(
      () => openLinks(['udp://127.0.0.1:7001?peer=127.0.0.1:7002', 'udp://127.0.0.1:7001?peer=127.0.0.1:7003&preset=LongFast'], { clock }),
      (e: AppError) => e.code === 'USAGE' && /binds 127\.0\.0\.1:7001, as --link udp:\/\/127\.0\.0\.1:7001\?peer=127\.0\.0\.1:7002 does/.test(e.message),
    );
    // Port 0 (any free port) and different ports are fine.
    assert.equal(openLinks(['udp://127.0.0.1:0?peer=127.0.0.1:9', 'udp://127.0.0.1:0?peer=127.0.0.1:9'], { clock }).length, 2);
    assert.equal(openLinks(['udp://127.0.0.1:7001?peer=127.0.0.1:9', 'udp://127.0.0.1:7002?peer=127.0.0.1:9'], { clock }).length, 2);
  });
});
