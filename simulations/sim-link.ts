/**
 * A node's radio as a `Link` (radio/link.ts) on the simulated channel, so the real sync
 * protocol runs over it unchanged: broadcast, 255-byte frames, the bit rate of the preset.
 *
 * `send` is what a LoRa radio driver does: sends are serialised; each waits until the channel
 * is clear (listen before talk: while the radio senses a frame in range it backs off for a
 * random 1–8 slots of one symbol-aligned contention slot) and until the real duty-cycle
 * governor (radio/duty-cycle.ts, on the virtual clock and timers) admits its time on air;
 * then (unless the sender's `beforeAir` now abandons it) the frame is on the air for its
 * airtime, and the promise resolves when it is sent.
 * The link goes 'down' when its node powers off and 'up' when it is back; sends pending then
 * reject with LINK_DOWN.
 */
import type { DutyCycleGovernor } from '../radio/duty-cycle.ts';
import { RadioError } from '../radio/errors.ts';
import { checkOutgoingFrame, createLinkStats, LinkEmitter, type Clock, type Link, type LinkEvents, type LinkListener, type LinkStats, type SendOptions } from '../radio/link.ts';
import { loraAirtimeMs, MAX_LORA_PAYLOAD, symbolTimeMs, type LoraPreset } from '../radio/lora-airtime.ts';
import type { Channel, Transmission } from './channel.ts';
import type { Simulator } from './engine.ts';
import type { Random } from './random.ts';

export interface SimLinkOptions {
  node: number;
  sim: Simulator;
  channel: Channel;
  preset: LoraPreset;
  governor: DutyCycleGovernor;
  random: Random;
  /** Stamps `receivedAt` (default: the simulator's clock). */
  clock?: Clock;
}

/** LoRa raw bit rate: SF · BW / 2^SF · 4 / (4 + CR). */
export function loraBitRate(p: LoraPreset): number {
  return ((p.sf * p.bw) / 2 ** p.sf) * (4 / (4 + p.cr));
}

export class SimLink implements Link {
  readonly spec: string;
  readonly mtu = MAX_LORA_PAYLOAD;
  readonly bitRate: number;
  readonly mode = 'broadcast' as const;
  readonly #o: SimLinkOptions;
  readonly #events = new LinkEmitter();
  readonly #stats = createLinkStats();
  readonly #slotMs: number;
  #started = false;
  #powered: boolean;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: SimLinkOptions) {
    this.#o = options;
    this.spec = `sim://node/${options.node}?preset=${options.preset.name}`;
    this.bitRate = loraBitRate(options.preset);
    this.#slotMs = 8.5 * symbolTimeMs(options.preset);
    this.#powered = options.channel.online[options.node] === 1;
  }

  get up(): boolean {
    return this.#started && this.#powered;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#powered) this.#events.emit('up');
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    const wasUp = this.up;
    this.#started = false;
    if (wasUp) this.#events.emit('down');
  }

  /** The node powered off or on (churn). */
  setPowered(on: boolean): void {
    if (on === this.#powered) return;
    const wasUp = this.up;
    this.#powered = on;
    if (wasUp !== this.up) this.#events.emit(this.up ? 'up' : 'down');
  }

  /** A frame reached this node intact (called by the channel, never from inside `send`). */
  deliver(tx: Transmission, rssi: number, snr: number): void {
    if (!this.up) return;
    const frame = (tx.payload as Uint8Array).slice();
    this.#stats.framesIn++;
    this.#stats.bytesIn += frame.length;
    this.#events.emit('frame', frame, { rssi, snr, from: `sim://node/${tx.from}`, receivedAt: (this.#o.clock ?? this.#o.sim.clock).now() });
  }

  send(frame: Uint8Array, options?: SendOptions): Promise<void> {
    let copy: Uint8Array;
    try {
      copy = checkOutgoingFrame(this, frame);
    } catch (err) {
      return Promise.reject(err);
    }
    const result = this.#queue.then(() => this.#transmit(copy, options?.beforeAir));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #transmit(frame: Uint8Array, beforeAir?: () => boolean): Promise<void> {
    const { channel, node, governor, random, preset } = this.#o;
    const airtime = loraAirtimeMs(preset, frame.length);
    for (;;) {
      if (!this.up) throw new RadioError('LINK_DOWN', `${this.spec}: link went down before the frame was sent`);
      if (channel.isBusy(node)) {
        await this.#sleep((1 + random.int(8)) * this.#slotMs);
        continue;
      }
      const wait = governor.waitTimeMs(airtime);
      if (wait > 0) {
        await this.#sleep(wait);
        continue;
      }
      break;
    }
    if (beforeAir && !beforeAir()) return;
    governor.record(airtime);
    channel.transmit(node, frame.length, airtime, frame);
    await this.#sleep(airtime);
    this.#stats.framesOut++;
    this.#stats.bytesOut += frame.length;
    this.#stats.airtimeMs += airtime;
    if (!this.up) throw new RadioError('LINK_DOWN', `${this.spec}: link went down while the frame was on air`);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#o.sim.timer.setTimeout(resolve, ms));
  }

  on<E extends keyof LinkEvents>(event: E, listener: LinkListener<E>): () => void {
    return this.#events.on(event, listener);
  }

  off<E extends keyof LinkEvents>(event: E, listener: LinkListener<E>): void {
    this.#events.off(event, listener);
  }

  stats(): LinkStats {
    return { ...this.#stats };
  }
}
