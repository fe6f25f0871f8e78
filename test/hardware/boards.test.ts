/**
 * Board profiles (hardware/boards.ts) are consistent data, USB lookups guess the right boards,
 * and the Pi system files in hardware/pi/ are exactly what the data renders.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BOARDS, boardsForUsb, findBoard, radioUsbVendor } from '../../hardware/boards.ts';
import { renderSystemdUnit, renderUdevRules } from '../../hardware/pi-files.ts';

const piDir = join(import.meta.dirname, '../../hardware/pi');

describe('hardware/boards', () => {
  it('every profile is complete: unique kebab-case id, hex USB ids, a way to attach', () => {
    const ids = new Set<string>();
    for (const b of BOARDS) {
      assert.match(b.id, /^[a-z0-9]+(-[a-z0-9]+)*$/, b.id);
      assert.ok(!ids.has(b.id), `duplicate ${b.id}`);
      ids.add(b.id);
      assert.ok(b.attach.length > 0, b.id);
      for (const u of b.usb) {
        assert.match(u.vid, /^[0-9a-f]{4}$/, b.id);
        if (u.pid !== undefined) assert.match(u.pid, /^[0-9a-f]{4}$/, b.id);
      }
      assert.equal(b.usb.length === 0, b.attach.includes('spi-hat') && !b.attach.includes('usb-serial'), `${b.id}: USB ids iff it attaches over USB`);
      assert.ok(b.maxTxPowerDbm > 0 && b.maxTxPowerDbm <= 30, b.id);
      assert.ok(b.hwModel.length > 0 && b.antenna.length > 0 && b.notes.length > 0, b.id);
    }
    for (const family of ['Heltec', 'LilyGO', 'RAK Wireless', 'Seeed', 'Raspberry Pi HAT']) {
      assert.ok(BOARDS.some((b) => b.family === family), family);
    }
  });

  it('guesses boards from USB ids: exact product first, vendor-wide matches after', () => {
    assert.ok(boardsForUsb('10c4', 'ea60').some((b) => b.id === 'heltec-v3'));
    assert.deepEqual(boardsForUsb(0x239a, 0x8029).map((b) => b.id), ['lilygo-t-echo', 'rak-wisblock-4631']);
    assert.ok(boardsForUsb('2886', '0057').every((b) => b.family === 'Seeed'));
    assert.deepEqual(boardsForUsb('1d6b', '0002'), []);
    assert.equal(radioUsbVendor('1a86', 'ffff')?.vid, '1a86');
    assert.equal(radioUsbVendor('1d6b', '0002'), undefined);
    assert.equal(findBoard('heltec-v3')?.radio, 'SX1262');
  });

  it('the udev rule and systemd unit in hardware/pi/ match what the data renders', () => {
    assert.equal(readFileSync(join(piDir, '99-citizen-radio.rules'), 'utf8'), renderUdevRules());
    assert.equal(readFileSync(join(piDir, 'citizen.service'), 'utf8'), renderSystemdUnit());
    const rules = renderUdevRules();
    for (const b of BOARDS) for (const u of b.usb) assert.ok(rules.includes(`ATTRS{idVendor}=="${u.vid}"`), `${b.id} ${u.vid}`);
    assert.match(rules, /ID_MM_DEVICE_IGNORE/);
    const unit = renderSystemdUnit({ links: ['meshtastic+tcp://127.0.0.1:4403'], user: 'rose' });
    assert.match(unit, /^ExecStart=\/usr\/bin\/node \/opt\/citizen-cloud\/bin\/citizen\.mjs start .*--link meshtastic\+tcp:\/\/127\.0\.0\.1:4403$/m);
    assert.match(unit, /^User=rose$/m);
    assert.match(unit, /^KillSignal=SIGTERM$/m);
  });
});
