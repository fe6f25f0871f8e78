/**
 * Region plans as data: where each regulatory region lets a LoRa radio transmit, how much of
 * the time (duty cycle), and how loud. The region set and names follow Meshtastic's firmware
 * (src/mesh/RadioInterface.cpp, `regions[]`), so a household can use the region name its
 * Meshtastic radio already shows; EU868 also lists the ETSI EN 300 220 / ERC Rec 70-03
 * sub-bands, because there the duty cycle depends on the frequency.
 *
 * Facts only, no behaviour: lookups and checks live in radio/region-plan.ts. Figures were
 * read from the sources named in each `source` field; where Meshtastic and the regulation
 * differ, `note` says so. Nothing here is legal advice — check your own regulator.
 */

/** One band within a region with its own duty cycle and power limit. */
export interface SubBandData {
  /** Lower and upper band edges, MHz. */
  readonly lowMHz: number;
  readonly highMHz: number;
  /** Share of time a transmitter may be on, in percent over the regulator's window; 100 = no limit. */
  readonly dutyCyclePercent: number;
  /** Maximum radiated power, dBm (ERP/EIRP as the regulator states it). */
  readonly maxPowerDbm: number;
  readonly note?: string;
}

/** One regulatory region. */
export interface RegionData {
  /** Meshtastic's name for the region (EU_868, US, ...). */
  readonly name: string;
  /** Other spellings people use (US_915, ...); matched like `name`. */
  readonly aliases?: readonly string[];
  /** The range Meshtastic transmits in for this region, MHz. */
  readonly lowMHz: number;
  readonly highMHz: number;
  /** Duty cycle in percent for that range (100 = no limit). */
  readonly dutyCyclePercent: number;
  /** Power limit for that range, dBm. */
  readonly maxPowerDbm: number;
  /** Centre frequency of Meshtastic's default channel, where it is fixed by the plan, MHz. */
  readonly defaultFrequencyMHz?: number;
  /** Finer plan, where the duty cycle or power depends on frequency. */
  readonly subBands?: readonly SubBandData[];
  /** Where the figures come from. */
  readonly source: string;
  readonly note?: string;
}

const MESHTASTIC = 'Meshtastic firmware src/mesh/RadioInterface.cpp regions[]';
const ETSI = 'ETSI EN 300 220-2 V3.2.1 Table B.1 / ERC Recommendation 70-03 Annex 1 (bands h1.3–h1.9)';

/** Every region this project knows, Meshtastic's order. */
export const REGIONS: readonly RegionData[] = [
  { name: 'US', aliases: ['US_915'], lowMHz: 902, highMHz: 928, dutyCyclePercent: 100, maxPowerDbm: 30, source: `${MESHTASTIC}; FCC Part 15.247` },
  {
    name: 'EU_433',
    lowMHz: 433,
    highMHz: 434,
    dutyCyclePercent: 10,
    maxPowerDbm: 10,
    source: `${MESHTASTIC}; ETSI EN 300 220 V3.2.1 Table B.1 item H`,
    note: 'ETSI band 433.05–434.79 MHz at 10 mW ERP and 10% duty cycle.',
  },
  {
    name: 'EU_868',
    aliases: ['EU_863_870'],
    lowMHz: 869.4,
    highMHz: 869.65,
    dutyCyclePercent: 10,
    maxPowerDbm: 27,
    defaultFrequencyMHz: 869.525,
    source: `${MESHTASTIC}; ${ETSI}`,
    note:
      'Meshtastic uses only 869.4–869.65 MHz (the 10%, 500 mW band); its one 250 kHz slot is centred on 869.525 MHz. ' +
      'The sub-bands below give the rest of the 863–870 MHz SRD allocation.',
    subBands: [
      { lowMHz: 863, highMHz: 865, dutyCyclePercent: 0.1, maxPowerDbm: 14, note: 'h1.3, 25 mW ERP' },
      { lowMHz: 865, highMHz: 868, dutyCyclePercent: 1, maxPowerDbm: 14, note: 'h1.4, 25 mW ERP' },
      { lowMHz: 868, highMHz: 868.6, dutyCyclePercent: 1, maxPowerDbm: 14, note: 'h1.5, 25 mW ERP; LoRaWAN default channels 868.1/868.3/868.5' },
      { lowMHz: 868.7, highMHz: 869.2, dutyCyclePercent: 0.1, maxPowerDbm: 14, note: 'h1.6, 25 mW ERP' },
      { lowMHz: 869.4, highMHz: 869.65, dutyCyclePercent: 10, maxPowerDbm: 27, note: 'h1.7, 500 mW ERP; Meshtastic default 869.525 MHz' },
      { lowMHz: 869.7, highMHz: 870, dutyCyclePercent: 1, maxPowerDbm: 14, note: 'h1.9, 25 mW ERP (h1.8: 5 mW with no duty-cycle limit)' },
    ],
  },
  { name: 'CN', aliases: ['CN_470'], lowMHz: 470, highMHz: 510, dutyCyclePercent: 100, maxPowerDbm: 19, source: `${MESHTASTIC}; LoRaWAN Regional Parameters RP002` },
  { name: 'JP', aliases: ['JP_920', 'AS923_JP'], lowMHz: 920.5, highMHz: 923.5, dutyCyclePercent: 100, maxPowerDbm: 13, source: `${MESHTASTIC}; ARIB STD-T108`, note: 'ARIB requires carrier sense and limits transmit time per frame; Meshtastic models no duty cycle.' },
  { name: 'ANZ', aliases: ['ANZ_915', 'AU_915'], lowMHz: 915, highMHz: 928, dutyCyclePercent: 100, maxPowerDbm: 30, source: `${MESHTASTIC}; ACMA LIPD class licence` },
  { name: 'ANZ_433', lowMHz: 433.05, highMHz: 434.79, dutyCyclePercent: 100, maxPowerDbm: 14, source: `${MESHTASTIC}; ACMA LIPD class licence, NZ GURL for SRDs` },
  { name: 'RU', aliases: ['RU_868', 'RU_864'], lowMHz: 868.7, highMHz: 869.2, dutyCyclePercent: 100, maxPowerDbm: 20, source: `${MESHTASTIC}; SCRF decision 18-46-03-1`, note: 'No duty cycle with listen-before-talk, as Meshtastic does.' },
  { name: 'KR', aliases: ['KR_920'], lowMHz: 920, highMHz: 923, dutyCyclePercent: 100, maxPowerDbm: 23, source: `${MESHTASTIC}; LoRaWAN Regional Parameters RP002` },
  { name: 'TW', aliases: ['TW_920'], lowMHz: 920, highMHz: 925, dutyCyclePercent: 100, maxPowerDbm: 27, source: `${MESHTASTIC}; NCC Low-power RF Devices Technical Regulations 5.8.1` },
  { name: 'IN', aliases: ['IN_865'], lowMHz: 865, highMHz: 867, dutyCyclePercent: 100, maxPowerDbm: 30, source: `${MESHTASTIC}; LoRaWAN Regional Parameters RP002` },
  { name: 'NZ_865', lowMHz: 864, highMHz: 868, dutyCyclePercent: 100, maxPowerDbm: 36, source: `${MESHTASTIC}; NZ RSM licence 219752` },
  { name: 'TH', aliases: ['TH_920'], lowMHz: 920, highMHz: 925, dutyCyclePercent: 100, maxPowerDbm: 16, source: `${MESHTASTIC}; LoRaWAN Regional Parameters RP002` },
  { name: 'UA_433', lowMHz: 433, highMHz: 434.7, dutyCyclePercent: 10, maxPowerDbm: 10, source: `${MESHTASTIC}; NKRZI decision of 19.01.2016`, note: '433.05–434.7 MHz, 10 mW.' },
  { name: 'UA_868', lowMHz: 868, highMHz: 868.6, dutyCyclePercent: 1, maxPowerDbm: 14, source: `${MESHTASTIC}; NKRZI decision of 19.01.2016`, note: '868.0–868.6 MHz, 25 mW.' },
  { name: 'MY_433', lowMHz: 433, highMHz: 435, dutyCyclePercent: 100, maxPowerDbm: 20, source: `${MESHTASTIC}; MCMC SRD specification` },
  {
    name: 'MY_919',
    lowMHz: 919,
    highMHz: 924,
    dutyCyclePercent: 100,
    maxPowerDbm: 27,
    source: `${MESHTASTIC}; MCMC SRD specification`,
    note: '919–923 MHz without restriction; 923–924 MHz needs 1% duty cycle or frequency hopping (Meshtastic hops).',
  },
  { name: 'SG_923', lowMHz: 917, highMHz: 925, dutyCyclePercent: 100, maxPowerDbm: 20, source: `${MESHTASTIC}; IMDA TS SRD band 30d` },
  { name: 'PH_433', lowMHz: 433, highMHz: 434.7, dutyCyclePercent: 100, maxPowerDbm: 10, source: `${MESHTASTIC}; NTC (meshtastic/firmware#4948)` },
  { name: 'PH_868', lowMHz: 868, highMHz: 869.4, dutyCyclePercent: 100, maxPowerDbm: 14, source: `${MESHTASTIC}; NTC (meshtastic/firmware#4948)` },
  { name: 'PH_915', lowMHz: 915, highMHz: 918, dutyCyclePercent: 100, maxPowerDbm: 24, source: `${MESHTASTIC}; NTC (meshtastic/firmware#4948)` },
  { name: 'KZ_433', lowMHz: 433.075, highMHz: 434.775, dutyCyclePercent: 100, maxPowerDbm: 10, source: `${MESHTASTIC}; meshtastic/firmware#7204` },
  {
    name: 'KZ_863',
    lowMHz: 863,
    highMHz: 868,
    dutyCyclePercent: 100,
    maxPowerDbm: 30,
    source: `${MESHTASTIC}; meshtastic/firmware#7204`,
    note: 'The firmware comment says < 25 mW EIRP (14 dBm) while its power limit is 30 dBm; unverified.',
  },
  { name: 'NP_865', lowMHz: 865, highMHz: 868, dutyCyclePercent: 100, maxPowerDbm: 30, source: `${MESHTASTIC}; NTA Radio Frequency Policy 2080` },
  { name: 'BR_902', lowMHz: 902, highMHz: 907.5, dutyCyclePercent: 100, maxPowerDbm: 30, source: `${MESHTASTIC}; meshtastic/firmware#3741 (Anatel)` },
  { name: 'LORA_24', lowMHz: 2400, highMHz: 2483.5, dutyCyclePercent: 100, maxPowerDbm: 10, source: `${MESHTASTIC}; 2.4 GHz ISM, SX128x radios only` },
];

/** The names of every known region, Meshtastic's spelling. */
export function listRegionNames(): string[] {
  return REGIONS.map((r) => r.name);
}
