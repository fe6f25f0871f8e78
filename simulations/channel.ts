/**
 * The shared LoRa channel: who hears which frame, and which frames are lost.
 *
 * One channel (one frequency, one preset) for every node. A transmission occupies the air
 * from its start for its time on air; each neighbour in range starts a reception. A
 * reception is delivered at the end of the frame when all of these hold:
 *
 *   1. heard:        RSSI ≥ sensitivity (radio-model.ts);
 *   2. half duplex:  the receiver did not transmit at any moment of the frame (a radio that
 *                    is sending hears nothing, and starting to send drops what it was hearing);
 *   3. powered:      the receiver stayed online for the whole frame;
 *   4. capture rule: for every other frame g overlapping it at this receiver, with powers in dBm,
 *        - if g started first (or at the same instant, scheduled first) and g is at or above
 *          sensitivity here, the receiver was already syncing to g: this frame survives only
 *          if it is ≥ CAPTURE_DB (6 dB) stronger than g AND it started during g's preamble
 *          (the receiver re-locks onto a much stronger preamble, but not once g's header is
 *          being decoded);
 *        - if g started first but is below sensitivity here, the receiver could not lock onto
 *          it and is still listening: g is only noise, as a late arrival is;
 *        - if g started later, this frame survives only if it is ≥ 6 dB stronger than g
 *          (a weaker late arrival is noise under the capture threshold).
 *      So of two overlapping frames at most one survives, and only one that is 6 dB above
 *      the other. Frames weaker than sensitivity − 6 dB are never in range and never interfere;
 *      interference does not add up across several weaker frames (each is compared alone).
 *   5. partitions:   no frame crosses an active cut (both for reception and interference).
 *
 * `collisions` counts receptions that met 1–3 and 5 but failed 4.
 */
import { SimError } from './errors.ts';
import type { Simulator } from './engine.ts';
import { CAPTURE_DB, type LinkBudget } from './radio-model.ts';

/** A frame on the air. */
export interface Transmission {
  from: number;
  start: number;
  end: number;
  bytes: number;
  /** What the strategy sent: a frame's bytes, or a baseline packet. */
  payload: unknown;
}

/** Called when a node receives a frame intact. */
export type Receiver = (tx: Transmission, rssi: number, snr: number) => void;

/** A cut between nodes left and right of `x`, active in [fromMs, untilMs). */
export interface Cut {
  fromMs: number;
  untilMs: number;
  x: number;
}

export interface ChannelOptions {
  budget: LinkBudget;
  xs: Float64Array;
  sensitivityDbm: number;
  noiseFloorDbm: number;
  /** Preamble time on air, ms (the capture window). */
  preambleMs: number;
  cuts?: Cut[];
}

interface Reception {
  tx: Transmission;
  node: number;
  rssi: number;
  /** 0 fine, 1 collided, 2 lost otherwise (half duplex, powered off). */
  lost: number;
}

/** Counters since the channel was made. */
export interface ChannelStats {
  frames: number;
  bytesOnAir: number;
  airtimeMs: number;
  collisions: number;
  /** Receptions in range that the receiver missed because it was sending. */
  halfDuplexLosses: number;
}

export class Channel {
  readonly stats: ChannelStats = { frames: 0, bytesOnAir: 0, airtimeMs: 0, collisions: 0, halfDuplexLosses: 0 };
  /** Per node: starts and lengths (ms) of every transmission, for duty-cycle accounting. */
  readonly txStarts: number[][];
  readonly txLengths: number[][];
  readonly online: Uint8Array;
  readonly #sim: Simulator;
  readonly #opts: ChannelOptions;
  readonly #active: Reception[][];
  readonly #txUntil: Float64Array;
  readonly #receivers: (Receiver | undefined)[];
  readonly #heard: number;

  constructor(sim: Simulator, options: ChannelOptions) {
    const n = options.xs.length;
    this.#sim = sim;
    this.#opts = options;
    this.#active = Array.from({ length: n }, () => []);
    this.#txUntil = new Float64Array(n).fill(-1);
    this.#receivers = new Array(n).fill(undefined);
    this.online = new Uint8Array(n).fill(1);
    this.txStarts = Array.from({ length: n }, () => []);
    this.txLengths = Array.from({ length: n }, () => []);
    this.#heard = options.sensitivityDbm;
  }

  get size(): number {
    return this.online.length;
  }

  /** Where node `i`'s intact frames go. */
  attach(i: number, receiver: Receiver): void {
    this.#receivers[i] = receiver;
  }

  /** Power node `i` on or off; a node going off loses what it was receiving. */
  setOnline(i: number, on: boolean): void {
    this.online[i] = on ? 1 : 0;
    if (!on) for (const r of this.#active[i]!) r.lost = 2;
  }

  isTransmitting(i: number): boolean {
    return this.#txUntil[i]! > this.#sim.now;
  }

  /** Channel activity as the node's radio senses it: sending, or a frame in range being received. */
  isBusy(i: number): boolean {
    if (this.isTransmitting(i)) return true;
    for (const r of this.#active[i]!) if (r.rssi >= this.#heard) return true;
    return false;
  }

  /** Node `i`'s neighbours in hearing range (at or above sensitivity) and the received power. */
  neighboursOf(i: number): { node: number; rssi: number }[] {
    const { neighbours, rssi } = this.#opts.budget;
    const out: { node: number; rssi: number }[] = [];
    const list = neighbours[i]!;
    for (let k = 0; k < list.length; k++) if (rssi[i]![k]! >= this.#heard) out.push({ node: list[k]!, rssi: rssi[i]![k]! });
    return out;
  }

  /**
   * Put a frame on the air from node `from` now, for `airtimeMs`. Returns null when the node is
   * off. Throws SimError RADIO_BUSY if the node is already transmitting.
   */
  transmit(from: number, bytes: number, airtimeMs: number, payload: unknown): Transmission | null {
    if (!this.online[from]) return null;
    const sim = this.#sim;
    const now = sim.now;
    if (this.#txUntil[from]! > now) throw new SimError('RADIO_BUSY', `node ${from} is already transmitting`);
    // Half duplex: whatever this node was hearing is lost.
    for (const r of this.#active[from]!) {
      if (r.lost === 0 && r.rssi >= this.#heard) this.stats.halfDuplexLosses++;
      r.lost = 2;
    }
    const tx: Transmission = { from, start: now, end: now + airtimeMs, bytes, payload };
    this.#txUntil[from] = tx.end;
    this.stats.frames++;
    this.stats.bytesOnAir += bytes;
    this.stats.airtimeMs += airtimeMs;
    this.txStarts[from]!.push(now);
    this.txLengths[from]!.push(airtimeMs);

    const cuts = this.#activeCuts(now);
    const { neighbours, rssi } = this.#opts.budget;
    const list = neighbours[from]!;
    const powers = rssi[from]!;
    const receptions: Reception[] = [];
    const preamble = this.#opts.preambleMs;
    for (let k = 0; k < list.length; k++) {
      const j = list[k]!;
      if (!this.online[j]) continue;
      if (cuts !== null && this.#crossesCut(from, j, cuts)) continue;
      const power = powers[k]!;
      if (this.#txUntil[j]! > now) {
        if (power >= this.#heard) this.stats.halfDuplexLosses++;
        continue;
      }
      const r: Reception = { tx, node: j, rssi: power, lost: 0 };
      for (const e of this.#active[j]!) {
        // e started first: it survives only if 6 dB above the newcomer.
        if (e.rssi < power + CAPTURE_DB && e.lost === 0) e.lost = 1;
        // The newcomer survives only if 6 dB above e and, when the receiver had locked onto e
        // (e is at or above sensitivity), still within e's preamble.
        const locked = e.rssi >= this.#heard;
        if (!(power >= e.rssi + CAPTURE_DB && (!locked || now < e.tx.start + preamble)) && r.lost === 0) r.lost = 1;
      }
      this.#active[j]!.push(r);
      receptions.push(r);
    }
    sim.at(tx.end, () => this.#finish(tx, receptions));
    return tx;
  }

  #finish(tx: Transmission, receptions: Reception[]): void {
    const noise = this.#opts.noiseFloorDbm;
    for (const r of receptions) {
      const active = this.#active[r.node]!;
      const at = active.indexOf(r);
      if (at >= 0) {
        active[at] = active[active.length - 1]!;
        active.pop();
      }
    }
    for (const r of receptions) {
      if (r.rssi < this.#heard) continue;
      if (r.lost === 1) this.stats.collisions++;
      if (r.lost !== 0 || !this.online[r.node]) continue;
      this.#receivers[r.node]?.(tx, r.rssi, r.rssi - noise);
    }
  }

  #activeCuts(now: number): Cut[] | null {
    const cuts = this.#opts.cuts;
    if (!cuts || cuts.length === 0) return null;
    const active = cuts.filter((c) => now >= c.fromMs && now < c.untilMs);
    return active.length > 0 ? active : null;
  }

  #crossesCut(a: number, b: number, cuts: Cut[]): boolean {
    const xs = this.#opts.xs;
    for (const c of cuts) if (xs[a]! < c.x !== xs[b]! < c.x) return true;
    return false;
  }

  /** Whether a frame between `a` and `b` would cross an active cut now. */
  isCut(a: number, b: number): boolean {
    const cuts = this.#activeCuts(this.#sim.now);
    return cuts !== null && this.#crossesCut(a, b, cuts);
  }
}
