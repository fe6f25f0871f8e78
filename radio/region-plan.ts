/**
 * Region plans for the radio layer: find a region by any common spelling and derive the
 * duty cycle and power limit that apply at a frequency. The facts themselves are data in
 * hardware/regions.ts; this file only looks them up and refuses what they do not cover.
 */
import { REGIONS, type RegionData, type SubBandData } from '../hardware/regions.ts';
import { RadioError } from './errors.ts';

export type RegionPlan = RegionData;
export type SubBand = SubBandData;

/** What applies at one frequency: duty cycle as a fraction (1 = none) and the power limit. */
export interface BandLimits {
  /** The regulatory duty cycle as a fraction in (0, 1]; feed it to the duty-cycle governor. */
  dutyCycle: number;
  maxPowerDbm: number;
  frequencyMHz: number;
}

function normalise(name: string): string {
  return name.replace(/[-_\s]/g, '').toUpperCase();
}

/**
 * A region by name, case-insensitively and ignoring '_', '-' and spaces, so EU868, EU_868
 * and eu868 all find EU_868; known aliases (US_915, ANZ_915, ...) also match.
 * Throws RadioError REGION_UNKNOWN, listing the known regions.
 */
export function findRegion(name: string): RegionPlan {
  if (typeof name !== 'string') throw new RadioError('REGION_UNKNOWN', 'region name must be a string');
  const key = normalise(name);
  const region = REGIONS.find((r) => normalise(r.name) === key || (r.aliases ?? []).some((a) => normalise(a) === key));
  if (!region) {
    throw new RadioError('REGION_UNKNOWN', `unknown region "${name}"; known regions: ${REGIONS.map((r) => r.name).join(', ')}`);
  }
  return region;
}

/**
 * The duty cycle and power limit at `frequencyMHz` in `region` (by default its Meshtastic
 * default channel, or the middle of its range). Where the region has sub-bands the one
 * containing the frequency applies. Throws FREQUENCY_OUTSIDE_REGION for a frequency the
 * plan does not allow (outside the range, or between sub-bands).
 */
export function limitsAt(region: RegionPlan, frequencyMHz?: number): BandLimits {
  const f = frequencyMHz ?? region.defaultFrequencyMHz ?? (region.lowMHz + region.highMHz) / 2;
  if (typeof f !== 'number' || !Number.isFinite(f)) {
    throw new RadioError('FREQUENCY_OUTSIDE_REGION', `frequency must be a finite number of MHz, got ${String(f)}`);
  }
  // On an edge shared by two sub-bands the stricter one applies.
  const candidates: readonly { lowMHz: number; highMHz: number; dutyCyclePercent: number; maxPowerDbm: number }[] =
    region.subBands ?? [region];
  const band = candidates
    .filter((b) => f >= b.lowMHz && f <= b.highMHz)
    .sort((a, b) => a.dutyCyclePercent - b.dutyCyclePercent || a.maxPowerDbm - b.maxPowerDbm)[0];
  if (!band) {
    throw new RadioError('FREQUENCY_OUTSIDE_REGION', `${f} MHz is not in a band of region ${region.name}`);
  }
  return { dutyCycle: band.dutyCyclePercent / 100, maxPowerDbm: band.maxPowerDbm, frequencyMHz: f };
}

/** Every region plan, Meshtastic's order. */
export function listRegions(): readonly RegionPlan[] {
  return REGIONS;
}
