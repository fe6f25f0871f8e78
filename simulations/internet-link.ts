/**
 * The internet between gateway households, as a `Link`: every gateway's frames reach every
 * other gateway that is online, INTERNET_LATENCY_MS later, at 10 Mbit/s with a 1200-byte
 * MTU (so the sync protocol treats it as a fast link). No loss, no airtime, no duty cycle.
 * A gateway's internet link goes down with its node (churn).
 */
import { RadioError } from '../radio/errors.ts';
import { checkOutgoingFrame, createLinkStats, LinkEmitter, type Clock, type Link, type LinkEvents, type LinkListener, type LinkStats } from '../radio/link.ts';
import type { Simulator } from './engine.ts';
import { INTERNET_LATENCY_MS } from './flood.ts';

/** Every gateway's internet link, so they can reach each other. */
export class InternetHub {
  readonly links: InternetLink[] = [];
  /** `clock` stamps `receivedAt` (default: the simulator's clock). */
  constructor(
    readonly sim: Simulator,
    readonly clock: Clock = sim.clock,
  ) {}

  /** A link for gateway node `node`. */
  attach(node: number, powered: boolean): InternetLink {
    const link = new InternetLink(this, node, powered);
    this.links.push(link);
    return link;
  }
}

export class InternetLink implements Link {
  readonly spec: string;
  readonly mtu = 1200;
  readonly bitRate = 10_000_000;
  readonly mode = 'broadcast' as const;
  readonly #events = new LinkEmitter();
  readonly #stats = createLinkStats();
  #started = false;
  #powered: boolean;

  constructor(
    private readonly hub: InternetHub,
    readonly node: number,
    powered: boolean,
  ) {
    this.spec = `sim-internet://node/${node}`;
    this.#powered = powered;
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

  setPowered(on: boolean): void {
    if (on === this.#powered) return;
    const wasUp = this.up;
    this.#powered = on;
    if (wasUp !== this.up) this.#events.emit(this.up ? 'up' : 'down');
  }

  async send(frame: Uint8Array): Promise<void> {
    const copy = checkOutgoingFrame(this, frame);
    const sim = this.hub.sim;
    for (const other of this.hub.links) {
      if (other === this) continue;
      sim.after(INTERNET_LATENCY_MS, () => other.#receive(copy, this.spec));
    }
    this.#stats.framesOut++;
    this.#stats.bytesOut += copy.length;
    if (!this.up) throw new RadioError('LINK_DOWN', `${this.spec}: link is down`);
  }

  #receive(frame: Uint8Array, from: string): void {
    if (!this.up) return;
    this.#stats.framesIn++;
    this.#stats.bytesIn += frame.length;
    this.#events.emit('frame', frame.slice(), { from, receivedAt: this.hub.clock.now() });
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
