import assert from 'node:assert/strict';
import { findPreset, loraAirtimeMs, parseCodingRate, PRESETS, symbolTimeMs } from '../../radio/lora-airtime.ts';

/** The AN1200.13 formula written out once more, independently, for the comparison. */
function reference(sf: number, bw: number, cr: number, preamble: number, pl: number): number {
  const ts = (Math.pow(2, sf) / bw) * 1000;
  const de = ts >= 16 ? 1 : 0;
  const payloadSymbols = 8 + Math.max(Math.ceil((8 * pl - 4 * sf + 28 + 16) / (4 * (sf - 2 * de))) * (cr + 4), 0);
  return (preamble + 4.25) * ts + payloadSymbols * ts;
}

describe('radio/lora-airtime', () => {
  it('matches known figures from the Semtech calculator', () => {
    // SF7/125 kHz/4-5, 8-symbol preamble, 20 bytes: 56.576 ms (Semtech LoRa calculator).
    assert.equal(Math.round(loraAirtimeMs({ sf: 7, bw: 125_000, cr: 1, preamble: 8 }, 20) * 1000) / 1000, 56.576);
    // SF12/125 kHz uses low-data-rate optimisation (32.768 ms symbols).
    assert.equal(symbolTimeMs({ sf: 12, bw: 125_000 }), 32.768);
    assert.equal(Math.round(loraAirtimeMs({ sf: 12, bw: 125_000, cr: 1, preamble: 8 }, 51) * 10) / 10, 2465.8);
  });

  it('agrees with the formula for every preset and every payload size', () => {
    for (const p of PRESETS) {
      for (let pl = 0; pl <= 255; pl++) {
        assert.ok(Math.abs(loraAirtimeMs(p, pl) - reference(p.sf, p.bw, p.cr, p.preamble, pl)) < 1e-9, `${p.name} ${pl}`);
      }
    }
  });

  it('finds presets by any spelling and refuses unknown ones', () => {
    assert.equal(findPreset('LONG_FAST').name, 'LongFast');
    assert.equal(findPreset('long-slow').name, 'LongSlow');
    assert.throws(() => findPreset('Warp'), { code: 'PRESET_UNKNOWN' });
  });

  it('refuses impossible modulations and payloads', () => {
    assert.throws(() => loraAirtimeMs({ sf: 13, bw: 125_000, cr: 1, preamble: 8 }, 10), { code: 'MODULATION_INVALID' });
    assert.throws(() => loraAirtimeMs(findPreset('LongFast'), 256), { code: 'PAYLOAD_INVALID' });
    assert.throws(() => parseCodingRate('4/9'), { code: 'MODULATION_INVALID' });
    assert.equal(parseCodingRate('4/8'), 4);
  });
});
