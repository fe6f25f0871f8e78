/**
 * An in-memory broadcast medium for tests and the simulator: links attached to one medium
 * hear each other's frames, like radios on one channel. Who hears whom can be shaped
 * (`disconnect`/`connect`, symmetric) and frames can be lost by a loss function, so a line,
 * a star or a lossy neighbourhood can live in one process.
 *
 * Delivery is asynchronous (one `setImmediate` per send), never re-entrant from `send()`,
 * and a receiver that is down when the frame arrives does not hear it.
 */
import { RadioError } from './errors.ts';
import {
  checkOutgoingFrame,
  createLinkStats,
  LinkEmitter,
  type Clock,
  type Link,
  type LinkEvents,
  type LinkListener,
  type LinkMode,
  type LinkStats,
} from './link.ts';

/** Decides whether one frame from `from` is lost on its way to `to`; true means lost. */
export type LossFunction = (from: string, to: string, frame: Uint8Array) => boolean;

/** Options of a memory medium. */
export interface MemoryMediumOptions {
  /** Stamps `receivedAt` on delivered frames. */
  clock: Clock;
  /** True (default): every link hears every other until `disconnect`. False: none hear each other until `connect`. */
  hearsAll?: boolean;
  /** Optional loss; called once per (frame, receiver). */
  loss?: LossFunction;
}

/** Options of one link attached to a memory medium. */
export interface MemoryLinkOptions {
  /** Largest frame (default 255, LoRa-like). */
  mtu?: number;
  /** Nominal bit rate (default 1,000,000). */
  bitRate?: number;
  /** Default 'broadcast'. */
  mode?: LinkMode;
  /** Time on air of a frame of n bytes, added to `stats().airtimeMs` (default: none). Sends are not held. */
  airtimeMs?: (bytes: number) => number;
  /** Reported as `meta.rssi` / `meta.snr` on frames this link receives. */
  rssi?: number;
  snr?: number;
}

/** A shared in-memory channel. */
export interface MemoryMedium {
  /** A new link named `name` (unique on this medium); its spec is `memory://name`. */
  attach(name: string, options?: MemoryLinkOptions): Link;
  /** Let `a` and `b` hear each other. */
  connect(a: string, b: string): void;
  /** Stop `a` and `b` hearing each other. */
  disconnect(a: string, b: string): void;
  /** Replace the loss function (undefined: no loss). */
  setLoss(loss: LossFunction | undefined): void;
}

interface Member {
  name: string;
  link: MemoryLink;
}

class MemoryLink implements Link {
  readonly spec: string;
  readonly mtu: number;
  readonly bitRate: number;
  readonly mode: LinkMode;
  #up = false;
  readonly #events = new LinkEmitter();
  readonly #stats = createLinkStats();

  constructor(
    readonly name: string,
    private readonly options: MemoryLinkOptions,
    private readonly transmit: (from: string, frame: Uint8Array) => void,
  ) {
    this.spec = `memory://${name}`;
    this.mtu = options.mtu ?? 255;
    this.bitRate = options.bitRate ?? 1_000_000;
    this.mode = options.mode ?? 'broadcast';
  }

  get up(): boolean {
    return this.#up;
  }

  async start(): Promise<void> {
    if (this.#up) return;
    this.#up = true;
    this.#events.emit('up');
  }

  async stop(): Promise<void> {
    if (!this.#up) return;
    this.#up = false;
    this.#events.emit('down');
  }

  async send(frame: Uint8Array): Promise<void> {
    const copy = checkOutgoingFrame(this, frame);
    this.#stats.framesOut++;
    this.#stats.bytesOut += copy.length;
    this.#stats.airtimeMs += this.options.airtimeMs?.(copy.length) ?? 0;
    this.transmit(this.name, copy);
  }

  /** Called by the medium, asynchronously. */
  deliver(frame: Uint8Array, from: string, receivedAt: number): void {
    if (!this.#up) return;
    if (frame.length > this.mtu) {
      this.#stats.dropped++;
      return;
    }
    this.#stats.framesIn++;
    this.#stats.bytesIn += frame.length;
    const meta: LinkEvents['frame'][1] = { from, receivedAt };
    if (this.options.rssi !== undefined) meta.rssi = this.options.rssi;
    if (this.options.snr !== undefined) meta.snr = this.options.snr;
    this.#events.emit('frame', frame, meta);
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

/** A new, empty in-memory medium. */
export function createMemoryMedium(options: MemoryMediumOptions): MemoryMedium {
  const { clock } = options;
  const hearsAll = options.hearsAll ?? true;
  let loss = options.loss;
  const members = new Map<string, Member>();
  /** Pair overrides of `hearsAll`, keyed by the two names in sorted order. */
  const hears = new Map<string, boolean>();
  const pairKey = (a: string, b: string) => JSON.stringify(a < b ? [a, b] : [b, a]);
  const canHear = (a: string, b: string) => hears.get(pairKey(a, b)) ?? hearsAll;

  const transmit = (from: string, frame: Uint8Array) => {
    setImmediate(() => {
      for (const member of members.values()) {
        if (member.name === from || !canHear(from, member.name)) continue;
        if (loss?.(from, member.name, frame)) continue;
        try {
          member.link.deliver(Uint8Array.from(frame), from, clock.now());
        } catch (err) {
          // A throwing listener is a bug in its owner: surface it (as an uncaught error, like
          // EventEmitter) without keeping the frame from the other receivers.
          setImmediate(() => {
            throw err;
          });
        }
      }
    });
  };

  const checkName = (name: string) => {
    if (typeof name !== 'string' || name.length === 0) {
      throw new RadioError('LINK_NAME_INVALID', 'a memory link needs a non-empty name');
    }
  };

  return {
    attach(name, linkOptions = {}) {
      checkName(name);
      if (members.has(name)) throw new RadioError('LINK_NAME_TAKEN', `memory link "${name}" is already attached`);
      const mtu = linkOptions.mtu ?? 255;
      if (!Number.isInteger(mtu) || mtu < 1) throw new RadioError('LINK_OPTIONS_INVALID', `mtu must be a positive integer, got ${mtu}`);
      const link = new MemoryLink(name, linkOptions, transmit);
      members.set(name, { name, link });
      return link;
    },
    connect(a, b) {
      checkName(a);
      checkName(b);
      hears.set(pairKey(a, b), true);
    },
    disconnect(a, b) {
      checkName(a);
      checkName(b);
      hears.set(pairKey(a, b), false);
    },
    setLoss(next) {
      loss = next;
    },
  };
}
