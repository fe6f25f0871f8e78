/** Scenario files are validated at the boundary, naming the field; defaults are filled in. */
import assert from 'node:assert/strict';
import { nameSlug, parseScenario, resolveRadio } from '../../simulations/scenario.ts';

function refused(input: unknown, field: RegExp): void {
  assert.throws(() => parseScenario(input), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SCENARIO_INVALID');
    assert.match(err.message, field);
    return true;
  });
}

describe('simulations/scenario', () => {
  const base = { name: 'x', nodes: 3, duration_s: 600 };

  it('fills in the documented defaults', () => {
    const s = parseScenario(base);
    assert.equal(s.seed, 1);
    assert.equal(s.placement, 'random');
    assert.deepEqual(s.area_m, [3000, 3000]);
    assert.deepEqual(s.radio, { region: 'EU868', preset: 'LongFast', tx_power_dbm: 20, path_loss: { d0_m: 40, pl_d0_db: 127.41, exponent: 2.08, shadowing_db: 3.57 } });
    assert.equal(s.traffic.until_s, 540);
    assert.deepEqual(s.traffic.body_bytes, [40, 300]);
    assert.equal(s.churn.offline_fraction, 0);
    assert.deepEqual(s.partitions, []);
  });

  it('refuses missing, unknown, mistyped and impossible fields by name', () => {
    refused({ nodes: 3, duration_s: 1 }, /^name:/);
    refused({ name: 'x', duration_s: 1 }, /^nodes: is required/);
    refused({ name: 'x', nodes: 3 }, /^duration_s: is required/);
    refused({ ...base, colour: 'red' }, /^colour: unknown field/);
    refused({ ...base, duration_s: -5 }, /^duration_s: must be greater than 0/);
    refused({ ...base, nodes: 2.5 }, /^nodes: must be an integer/);
    refused({ ...base, nodes: '3' }, /^nodes: must be a number/);
    refused({ ...base, placement: 'hexagon' }, /^placement:/);
    refused({ ...base, positions: [[0, 0], [1, 1], [2, 2], [3, 3]] }, /^positions: has 4 entries but there are only 3 nodes/);
    refused({ ...base, positions: [[0, 0], [1, 'a'], [2, 2]] }, /^positions\[1\]\[1\]: must be a number/);
    refused({ ...base, radio: { preset: 'VeryFast' } }, /^radio\.preset: unknown preset/);
    refused({ ...base, radio: { region: 'MARS' } }, /^radio\.region: unknown region/);
    refused({ ...base, radio: { tx_power_dbm: 40 } }, /^radio\.tx_power_dbm: must be at most 27/);
    refused({ ...base, radio: { path_loss: { exponent: 0 } } }, /^radio\.path_loss\.exponent:/);
    refused({ ...base, radio: { path_loss: { gamma: 1 } } }, /^radio\.path_loss\.gamma: unknown field/);
    refused({ ...base, churn: { offline_fraction: 1.5 } }, /^churn\.offline_fraction: must be less than 1/);
    refused({ ...base, traffic: { body_bytes: [300, 40] } }, /^traffic\.body_bytes:/);
    refused({ ...base, traffic: { until_s: 601 } }, /^traffic\.until_s: must be at most 600/);
    refused({ ...base, traffic: { dm_per_node_per_hour: -1 } }, /^traffic\.dm_per_node_per_hour:/);
    refused({ ...base, partitions: [{ from_s: 100, until_s: 50, cut_x_m: 0 }] }, /^partitions\[0\]\.until_s: must be after from_s/);
    refused({ ...base, partitions: [{ from_s: 1, until_s: 50 }] }, /^partitions\[0\]\.cut_x_m: is required/);
    refused({ ...base, gateways: [5] }, /^gateways\[0\]: must be at most 2/);
    refused([], /^scenario:/);
  });

  it('refuses names that are empty, too long or hold control characters (they title every SVG)', () => {
    refused({ ...base, name: '' }, /^name: must be a non-empty string/);
    refused({ ...base, name: 'x'.repeat(101) }, /^name: must be a non-empty string of at most 100/);
    refused({ ...base, name: 'ctl\u0001x' }, /^name: must not contain control characters/);
    refused({ ...base, name: 'two\nlines' }, /^name: must not contain control characters/);
    refused({ ...base, name: 'bad\ud800' }, /^name: must not contain control characters/);
    assert.equal(parseScenario({ ...base, name: 'Straße 12 – 🌳' }).name, 'Straße 12 – 🌳');
  });

  it('makes a safe directory name of any scenario name', () => {
    assert.equal(nameSlug('neighbourhood-50'), 'neighbourhood-50');
    for (const name of ['.', '..', '../up', 'a/b', 'a\\b', '/abs', '.hidden', 'Straße 12']) {
      const slug = nameSlug(name);
      assert.ok(slug !== '.' && slug !== '..' && !slug.startsWith('.'), `${name} -> ${slug}`);
      assert.match(slug, /^[A-Za-z0-9._-]+$/, `${name} -> ${slug}`);
    }
  });

  it('refuses a preset wider than its region band, as the firmware does (it falls back to LongFast)', () => {
    for (const preset of ['ShortTurbo', 'LongTurbo']) {
      refused({ ...base, radio: { region: 'EU868', preset } }, /^radio\.preset: \w+ needs 500 kHz but region EU_868 is only 250 kHz wide/);
    }
    assert.equal(parseScenario({ ...base, radio: { region: 'EU868', preset: 'ShortFast' } }).radio.preset, 'ShortFast');
    assert.equal(parseScenario({ ...base, radio: { region: 'RU', preset: 'ShortTurbo' } }).radio.preset, 'ShortTurbo', 'RU is 500 kHz wide');
    assert.equal(parseScenario({ ...base, radio: { region: 'US', preset: 'LongTurbo' } }).radio.preset, 'LongTurbo');
  });

  it('runs the presets at 2.4 GHz as the firmware does: wide LoRa, 3.25 times the bandwidth, 12-symbol preamble', () => {
    const at = (region: string, preset: string) => resolveRadio(parseScenario({ ...base, radio: { region, preset } })).preset;
    assert.deepEqual([at('LORA_24', 'LongFast').bw, at('LORA_24', 'LongFast').preamble], [812_500, 12]);
    assert.equal(at('LORA_24', 'ShortTurbo').bw, 1_625_000);
    assert.equal(at('LORA_24', 'LongSlow').bw, 406_250);
    assert.deepEqual([at('EU868', 'LongFast').bw, at('EU868', 'LongFast').preamble], [250_000, 16], 'sub-GHz presets unchanged');
  });
});
