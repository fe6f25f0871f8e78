/**
 * LoRa time on air (Semtech AN1200.13) and the Meshtastic modem presets. Every airtime
 * figure in the project — the duty-cycle governor, the simulator, `citizen airtime` —
 * comes from `loraAirtimeMs`.
 *
 *   T_sym      = 2^SF / BW
 *   T_preamble = (n_preamble + 4.25) * T_sym
 *   n_payload  = 8 + max(ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) * (CR + 4), 0)
 *   T_frame    = T_preamble + n_payload * T_sym
 */
import { RadioError } from './errors.ts';

export interface LoraModulation {
  /** Spreading factor 7..12. */
  sf: number;
  /** Bandwidth in Hz. */
  bw: number;
  /** Coding rate 1..4 for 4/5..4/8. */
  cr: number;
  /** Preamble symbols. */
  preamble: number;
  /** CRC on (default true). */
  crc?: boolean;
  /** Implicit header (default false). */
  implicitHeader?: boolean;
  /** Low-data-rate optimisation; by default on when the symbol time is 16 ms or more. */
  lowDataRate?: boolean;
}

export interface LoraPreset extends LoraModulation {
  name: string;
}

const MESHTASTIC_PREAMBLE = 16;

/** Meshtastic's modem presets (DESIGN.md, "Radio facts"). */
export const PRESETS: readonly LoraPreset[] = [
  { name: 'ShortTurbo', sf: 7, bw: 500_000, cr: 1, preamble: MESHTASTIC_PREAMBLE },
  { name: 'ShortFast', sf: 7, bw: 250_000, cr: 1, preamble: MESHTASTIC_PREAMBLE },
  { name: 'ShortSlow', sf: 8, bw: 250_000, cr: 1, preamble: MESHTASTIC_PREAMBLE },
  { name: 'MediumFast', sf: 9, bw: 250_000, cr: 1, preamble: MESHTASTIC_PREAMBLE },
  { name: 'MediumSlow', sf: 10, bw: 250_000, cr: 1, preamble: MESHTASTIC_PREAMBLE },
  { name: 'LongTurbo', sf: 11, bw: 500_000, cr: 4, preamble: MESHTASTIC_PREAMBLE },
  { name: 'LongFast', sf: 11, bw: 250_000, cr: 1, preamble: MESHTASTIC_PREAMBLE },
  { name: 'LongModerate', sf: 11, bw: 125_000, cr: 4, preamble: MESHTASTIC_PREAMBLE },
  { name: 'LongSlow', sf: 12, bw: 125_000, cr: 4, preamble: MESHTASTIC_PREAMBLE },
];

export const MAX_LORA_PAYLOAD = 255;

/** A preset by name, case-insensitively, ignoring '_' and '-' (LONG_FAST, long-fast, LongFast). */
export function findPreset(name: string): LoraPreset {
  const key = name.replace(/[-_\s]/g, '').toLowerCase();
  const preset = PRESETS.find((p) => p.name.toLowerCase() === key);
  if (!preset) {
    throw new RadioError('PRESET_UNKNOWN', `unknown preset "${name}"; known presets: ${PRESETS.map((p) => p.name).join(', ')}`);
  }
  return preset;
}

/** Symbol time in milliseconds. */
export function symbolTimeMs(m: Pick<LoraModulation, 'sf' | 'bw'>): number {
  return (2 ** m.sf / m.bw) * 1000;
}

export function validateModulation(m: LoraModulation): void {
  if (!Number.isInteger(m.sf) || m.sf < 6 || m.sf > 12) throw new RadioError('MODULATION_INVALID', `spreading factor must be 6..12, got ${m.sf}`);
  if (!(m.bw > 0) || m.bw > 1_625_000) throw new RadioError('MODULATION_INVALID', `bandwidth must be a positive number of Hz up to 1625000, got ${m.bw}`);
  if (!Number.isInteger(m.cr) || m.cr < 1 || m.cr > 4) throw new RadioError('MODULATION_INVALID', `coding rate must be 4/5..4/8, got 4/${m.cr + 4}`);
  if (!Number.isInteger(m.preamble) || m.preamble < 6 || m.preamble > 65535) throw new RadioError('MODULATION_INVALID', `preamble must be 6..65535 symbols, got ${m.preamble}`);
}

/** Time on air of one frame of `payloadBytes` bytes, in milliseconds. */
export function loraAirtimeMs(m: LoraModulation, payloadBytes: number): number {
  validateModulation(m);
  if (!Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > MAX_LORA_PAYLOAD) {
    throw new RadioError('PAYLOAD_INVALID', `a LoRa frame carries 0..${MAX_LORA_PAYLOAD} bytes, got ${payloadBytes}`);
  }
  const tSym = symbolTimeMs(m);
  const crc = m.crc === false ? 0 : 1;
  const ih = m.implicitHeader ? 1 : 0;
  const de = (m.lowDataRate ?? tSym >= 16) ? 1 : 0;
  const tPreamble = (m.preamble + 4.25) * tSym;
  const numerator = 8 * payloadBytes - 4 * m.sf + 28 + 16 * crc - 20 * ih;
  const nPayload = 8 + Math.max(Math.ceil(numerator / (4 * (m.sf - 2 * de))) * (m.cr + 4), 0);
  return tPreamble + nPayload * tSym;
}

/** "4/5" → 1 … "4/8" → 4. */
export function parseCodingRate(text: string): number {
  const m = /^4\/([5-8])$/.exec(text.trim());
  if (!m) throw new RadioError('MODULATION_INVALID', `coding rate must be written 4/5, 4/6, 4/7 or 4/8, got "${text}"`);
  return Number(m[1]) - 4;
}
