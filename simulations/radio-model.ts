/**
 * The physics of the simulated radio (SPEC §5), as pure functions:
 *
 *   path loss    PL(d) = pl_d0_db + 10·exponent·log10(d / d0_m) + X,  X ~ N(0, shadowing_db),
 *                X drawn once per pair of nodes and kept for the run (links are symmetric)
 *   received     RSSI = tx_power_dbm − PL(d)
 *   noise floor  N = −174 + 10·log10(BW) + 6 (noise figure), dBm
 *   sensitivity  S = N + SNR floor of the SF (SF7…SF12: −7.5, −10, −12.5, −15, −17.5, −20 dB)
 *                e.g. LongFast (SF11, 250 kHz): −174 + 53.98 + 6 − 17.5 = −131.5 dBm
 *
 * A frame is heard when RSSI ≥ S and it survives every overlap (see channel.ts for the
 * capture rule). Frames weaker than S − CAPTURE_DB can never destroy a frame that is heard,
 * so they are left out of the neighbour lists altogether.
 */
import { symbolTimeMs, type LoraModulation } from '../radio/lora-airtime.ts';
import type { PathLossModel } from './scenario.ts';

/** Receiver noise figure, dB (SPEC §5). */
export const NOISE_FIGURE_DB = 6;
/** How much stronger a frame must be than every overlapping one to survive it, dB. */
export const CAPTURE_DB = 6;

const SNR_FLOOR_DB: { [sf: number]: number } = { 6: -5, 7: -7.5, 8: -10, 9: -12.5, 10: -15, 11: -17.5, 12: -20 };

/** The demodulation floor of a spreading factor, dB. */
export function snrFloorDb(sf: number): number {
  const floor = SNR_FLOOR_DB[sf];
  if (floor === undefined) throw new RangeError(`no SNR floor for SF${sf}`);
  return floor;
}

/** Thermal noise plus the noise figure over `bwHz`, dBm. */
export function noiseFloorDbm(bwHz: number): number {
  return -174 + 10 * Math.log10(bwHz) + NOISE_FIGURE_DB;
}

/** The weakest signal a receiver can demodulate at this SF and bandwidth, dBm. */
export function sensitivityDbm(m: Pick<LoraModulation, 'sf' | 'bw'>): number {
  return noiseFloorDbm(m.bw) + snrFloorDb(m.sf);
}

/** Log-distance path loss at `distanceM` plus this link's shadowing, dB (distances under 1 m count as 1 m). */
export function pathLossDb(distanceM: number, model: PathLossModel, shadowingDb = 0): number {
  return model.pl_d0_db + 10 * model.exponent * Math.log10(Math.max(distanceM, 1) / model.d0_m) + shadowingDb;
}

/** The distance at which the mean received power equals the sensitivity (no shadowing), m. */
export function rangeM(txPowerDbm: number, sensitivity: number, model: PathLossModel): number {
  return model.d0_m * 10 ** ((txPowerDbm - sensitivity - model.pl_d0_db) / (10 * model.exponent));
}

/** The preamble's time on air, ms: the window in which a stronger frame can still capture the receiver. */
export function preambleMs(m: LoraModulation): number {
  return (m.preamble + 4.25) * symbolTimeMs(m);
}

/**
 * Who can hear whom: for each node, the nodes whose frames reach it at or above
 * `sensitivity − CAPTURE_DB`, with the received power. Built once per run.
 */
export interface LinkBudget {
  /** neighbours[i]: indices of the nodes node i's frames reach. */
  neighbours: Int32Array[];
  /** rssi[i][k]: received power at neighbours[i][k] of a frame from node i, dBm. */
  rssi: Float64Array[];
}

/** Link budgets for every pair, with shadowing drawn from `normal` once per unordered pair, in (i, j > i) order. */
export function computeLinkBudget(
  xs: Float64Array,
  ys: Float64Array,
  txPowerDbm: number,
  model: PathLossModel,
  sensitivity: number,
  normal: (sd: number) => number,
): LinkBudget {
  const n = xs.length;
  const threshold = sensitivity - CAPTURE_DB;
  const lists: { j: number[]; r: number[] }[] = Array.from({ length: n }, () => ({ j: [], r: [] }));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const shadow = model.shadowing_db > 0 ? normal(model.shadowing_db) : 0;
      const d = Math.hypot(xs[i]! - xs[j]!, ys[i]! - ys[j]!);
      const rssi = txPowerDbm - pathLossDb(d, model, shadow);
      if (rssi >= threshold) {
        lists[i]!.j.push(j);
        lists[i]!.r.push(rssi);
        lists[j]!.j.push(i);
        lists[j]!.r.push(rssi);
      }
    }
  }
  return { neighbours: lists.map((l) => Int32Array.from(l.j)), rssi: lists.map((l) => Float64Array.from(l.r)) };
}
