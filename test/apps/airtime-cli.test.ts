/**
 * `citizen airtime` (SPEC §2) in-process: the JSON shape, figures worked out by hand from the
 * Semtech formula (AN1200.13), and the bad values it refuses.
 */
import assert from 'node:assert/strict';
import { citizenInProcess, type InProcessRun } from '../helpers/cli-in-process.ts';

function airtime(...args: string[]): Promise<InProcessRun> {
  return citizenInProcess('airtime', ...args);
}

describe('citizen airtime', () => {
  it('prints the SPEC object with figures from the Semtech formula', async () => {
    // [args, preset, sf, bw, cr, bytes, airtime] with the arithmetic beside each case.
    const cases: Array<[string[], string | null, number, number, string, number, number]> = [
      // LongFast: SF11, 250 kHz, 4/5, 16 preamble symbols; T_sym 8.192 ms, no LDRO.
      // 10 B: ceil((80 - 44 + 44) / 44) = 2 -> 8 + 10 = 18 symbols; (20.25 + 18) * 8.192.
      [['--preset', 'LongFast', '--bytes', '10'], 'LongFast', 11, 250_000, '4/5', 10, 313.344],
      // 255 B: ceil((2040 - 44 + 44) / 44) = 47 -> 8 + 235 = 243; (20.25 + 243) * 8.192.
      [['--preset', 'LongFast', '--bytes', '255'], 'LongFast', 11, 250_000, '4/5', 255, 2156.544],
      // SF12, 125 kHz: T_sym 32.768 ms >= 16, so LDRO: ceil((80 - 48 + 44) / 40) = 2 -> 18; (12.25 + 18) * 32.768.
      [['--sf', '12', '--bw', '125000', '--bytes', '10'], null, 12, 125_000, '4/5', 10, 991.232],
      // 4/8, 51 B: ceil((408 - 48 + 44) / 40) = 11 -> 8 + 88 = 96; (12.25 + 96) * 32.768.
      [['--sf', '12', '--bw', '125000', '--cr', '4/8', '--preamble', '8', '--bytes', '51'], null, 12, 125_000, '4/8', 51, 3547.136],
      // LongModerate: SF11, 125 kHz: T_sym 16.384 ms, LDRO on: ceil((160 - 44 + 44) / 36) = 5 -> 8 + 40 = 48; (20.25 + 48) * 16.384.
      [['--preset', 'long_moderate', '--bytes', '20'], 'LongModerate', 11, 125_000, '4/8', 20, 1118.208],
      // SF6 (SX126x, explicit header), 125 kHz: T_sym 0.512 ms: ceil((80 - 24 + 44) / 24) = 5 -> 33; (12.25 + 33) * 0.512.
      [['--sf', '6', '--bw', '125000', '--bytes', '10'], null, 6, 125_000, '4/5', 10, 23.168],
      // SF7, 125 kHz: T_sym 1.024 ms: ceil((160 - 28 + 44) / 28) = 7 -> 43; (12.25 + 43) * 1.024.
      [['--sf', '7', '--bw', '125000', '--bytes', '20'], null, 7, 125_000, '4/5', 20, 56.576],
    ];
    for (const [args, preset, sf, bw, cr, bytes, ms] of cases) {
      const r = await airtime(...args);
      assert.equal(r.code, 0, r.err.join('\n'));
      assert.equal(r.out.length, 1);
      const json = JSON.parse(r.out[0]!) as Record<string, unknown>;
      assert.deepEqual(
        { preset: json.preset, sf: json.sf, bw_hz: json.bw_hz, cr: json.cr, bytes: json.bytes, airtime_ms: json.airtime_ms },
        { preset, sf, bw_hz: bw, cr, bytes, airtime_ms: ms },
        args.join(' '),
      );
    }
  });

  it('refuses bad values with one line and exit 2', async () => {
    const bad: Array<[string[], RegExp]> = [
      [['--preset', 'LongFast', '--bytes', '0'], /--bytes must be 1\.\.255/],
      [['--preset', 'LongFast', '--bytes', '256'], /--bytes must be 1\.\.255/],
      [['--preset', 'LongFast', '--bytes', '-1'], /--bytes must be 1\.\.255/],
      [['--preset', 'LongFast', '--bytes', '0x10'], /--bytes must be a whole number/],
      [['--preset', 'LongFast', '--bytes', '1e2'], /--bytes must be a whole number/],
      [['--preset', 'LongFast', '--bytes', '1.5'], /--bytes must be a whole number/],
      [['--preset', 'LongFast'], /missing --bytes/],
      [['--preset', 'Warp', '--bytes', '10'], /unknown preset "Warp"/],
      [['--sf', '5', '--bw', '125000', '--bytes', '10'], /spreading factor must be 6\.\.12, got 5/],
      [['--sf', '13', '--bw', '125000', '--bytes', '10'], /spreading factor must be 6\.\.12, got 13/],
      [['--sf', '9.5', '--bw', '125000', '--bytes', '10'], /--sf must be a whole number/],
      [['--sf', '9', '--bw', '125e3', '--bytes', '10'], /--bw must be a number/],
      [['--sf', '9', '--bw', '0', '--bytes', '10'], /bandwidth/],
      [['--sf', '9', '--bw', '125000', '--cr', '4/4', '--bytes', '10'], /coding rate/],
      [['--sf', '9', '--bw', '125000', '--cr', '4/9', '--bytes', '10'], /coding rate/],
      [['--sf', '9', '--bw', '125000', '--preamble', '0x8', '--bytes', '10'], /--preamble must be a whole number/],
      [['--sf', '9', '--bytes', '10'], /--sf and --bw/],
      [['--preset', 'LongFast', '--sf', '9', '--bytes', '10'], /not both/],
    ];
    for (const [args, message] of bad) {
      const r = await airtime(...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.deepEqual(r.out, [], args.join(' '));
      assert.equal(r.err.length, 1, args.join(' '));
      assert.match(r.err[0]!, /^citizen airtime: /);
      assert.match(r.err[0]!, message, args.join(' '));
    }
  });
});
