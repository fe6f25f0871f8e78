/** Region plans: lookups by any spelling, sub-band limits, and sanity of the data itself. */
import assert from 'node:assert/strict';
import { findRegion, limitsAt, listRegions } from '../../radio/region-plan.ts';
import { createDutyCycleGovernor } from '../../radio/duty-cycle.ts';

describe('radio/region-plan', () => {
  it('finds a region by any common spelling', () => {
    for (const name of ['EU868', 'EU_868', 'eu868', 'eu-868', ' EU 868 ']) assert.equal(findRegion(name).name, 'EU_868');
    assert.equal(findRegion('us915').name, 'US');
    assert.equal(findRegion('US').name, 'US');
    assert.equal(findRegion('nz865').name, 'NZ_865');
  });

  it('refuses an unknown region and lists the known ones', () => {
    assert.throws(() => findRegion('MARS_1'), (error: { code: string; message: string }) => {
      assert.equal(error.code, 'REGION_UNKNOWN');
      assert.match(error.message, /EU_868/);
      assert.match(error.message, /LORA_24/);
      return true;
    });
  });

  it('knows the regions Meshtastic supports', () => {
    const names = listRegions().map((r) => r.name);
    for (const expected of [
      'US', 'EU_433', 'EU_868', 'CN', 'JP', 'ANZ', 'KR', 'TW', 'RU', 'IN', 'NZ_865', 'TH', 'LORA_24', 'UA_433', 'UA_868',
      'MY_433', 'MY_919', 'SG_923', 'PH_433', 'PH_868', 'PH_915', 'KZ_433', 'KZ_863', 'NP_865', 'BR_902',
    ]) {
      assert.ok(names.includes(expected), expected);
    }
    assert.equal(new Set(names).size, names.length);
  });

  it('holds consistent data', () => {
    const spellings = new Set<string>();
    for (const r of listRegions()) {
      assert.ok(r.lowMHz < r.highMHz, r.name);
      assert.ok(r.dutyCyclePercent > 0 && r.dutyCyclePercent <= 100, r.name);
      assert.ok(Number.isFinite(r.maxPowerDbm) && r.maxPowerDbm > 0, r.name);
      assert.ok(r.source.length > 0, r.name);
      for (const s of [r.name, ...(r.aliases ?? [])]) {
        const key = s.replace(/[-_\s]/g, '').toUpperCase();
        assert.ok(!spellings.has(key), `spelling ${s} is ambiguous`);
        spellings.add(key);
      }
      // The region-level limits are those at its default frequency.
      const limits = limitsAt(r);
      assert.equal(limits.dutyCycle, r.dutyCyclePercent / 100, r.name);
      assert.equal(limits.maxPowerDbm, r.maxPowerDbm, r.name);
      for (const b of r.subBands ?? []) assert.ok(b.lowMHz < b.highMHz, `${r.name} ${b.lowMHz}`);
    }
  });

  it('gives EU868 sub-band limits, with the default channel in the 10% band', () => {
    const eu = findRegion('EU868');
    assert.deepEqual(limitsAt(eu), { dutyCycle: 0.1, maxPowerDbm: 27, frequencyMHz: 869.525 });
    assert.equal(limitsAt(eu, 868.1).dutyCycle, 0.01);
    assert.equal(limitsAt(eu, 864).dutyCycle, 0.001);
    assert.equal(limitsAt(eu, 869).dutyCycle, 0.001);
    assert.equal(limitsAt(eu, 869.8).dutyCycle, 0.01);
    assert.equal(limitsAt(eu, 865).dutyCycle, 0.001, 'a shared edge takes the stricter band');
    assert.throws(() => limitsAt(eu, 869.3), { code: 'FREQUENCY_OUTSIDE_REGION' });
    assert.throws(() => limitsAt(eu, 915), { code: 'FREQUENCY_OUTSIDE_REGION' });
    assert.throws(() => limitsAt(eu, Number.NaN), { code: 'FREQUENCY_OUTSIDE_REGION' });
  });

  it('feeds the duty-cycle governor: EU868 default gives 180 s per hour, US is unlimited', () => {
    const clock = { now: () => 0 };
    const eu = createDutyCycleGovernor({ dutyCycle: limitsAt(findRegion('EU_868')).dutyCycle }, { clock });
    assert.equal(eu.budgetMs, 180_000);
    const us = createDutyCycleGovernor({ dutyCycle: limitsAt(findRegion('US')).dutyCycle }, { clock });
    assert.equal(us.budgetMs, Infinity);
    assert.equal(limitsAt(findRegion('EU_433')).dutyCycle, 0.1);
    assert.equal(limitsAt(findRegion('US')).maxPowerDbm, 30);
  });
});
