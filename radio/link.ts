/**
 * The `Link` interface (DESIGN.md, "Layers and folders"): a medium that carries frames —
 * opaque byte strings of at most `mtu` bytes — to whoever can hear. Everything above
 * `radio/` (sync, the simulator, the daemon) talks to links only through this interface, so
 * an in-memory medium, UDP and a Meshtastic radio are interchangeable.
 *
 * Also holds the small pieces every link implementation shares: a typed listener set, the
 * stats counters and the send-time checks (so every link rejects the same way).
 */
import { RadioError } from './errors.ts';

/** Wall-clock source in milliseconds since the epoch; injected, never read from globals. */
export interface Clock {
  now(): number;
}

/** Whether one send reaches every neighbour in range (radio) or exactly one peer. */
export type LinkMode = 'broadcast' | 'point-to-point';

/** What the link knows about a received frame. */
export interface FrameMeta {
  /** Received signal strength in dBm, when the medium reports it. */
  rssi?: number;
  /** Signal-to-noise ratio in dB, when the medium reports it. */
  snr?: number;
  /** The sender as the medium names it (`HOST:PORT` for UDP, the attach name in memory). */
  from?: string;
  /** When the frame arrived, from the link's clock (ms). */
  receivedAt: number;
}

/** Counters since the link was created; they survive stop/start. */
export interface LinkStats {
  /** Frames handed to the medium. */
  framesOut: number;
  /** Frames delivered to 'frame' listeners. */
  framesIn: number;
  bytesOut: number;
  bytesIn: number;
  /** Time on air spent sending, for links that model it (0 otherwise). */
  airtimeMs: number;
  /** Frames received but thrown away (unknown sender, oversize) or that could not be sent to a peer. */
  dropped: number;
}

/** Events a link emits, with their arguments. */
export interface LinkEvents {
  frame: [frame: Uint8Array, meta: FrameMeta];
  up: [];
  down: [];
}

/** A listener for one link event. */
export type LinkListener<E extends keyof LinkEvents> = (...args: LinkEvents[E]) => void;

export interface SendOptions {
  /**
   * Asked, by a link that waits for a clear channel (listen before talk) or for its airtime
   * budget, just before the frame goes on air: false abandons the frame and the send resolves
   * without sending. A record a neighbour sent while ours waited need not go twice. Links that
   * hand frames over at once never call it.
   */
  beforeAir?: () => boolean;
}

/**
 * A frame-carrying medium. Links start down: call `start()`. Received frames are delivered
 * asynchronously, never from inside `send()`.
 */
export interface Link {
  /** The spec the link was built from, e.g. `udp://127.0.0.1:4000?peer=127.0.0.1:4001`. */
  readonly spec: string;
  /** Largest frame in bytes (255 for LoRa-like links). */
  readonly mtu: number;
  /** Nominal bit rate in bits per second. */
  readonly bitRate: number;
  readonly mode: LinkMode;
  /** True between a successful `start()` and `stop()` (or a failure of the medium). */
  readonly up: boolean;
  /** Bring the link up; resolves once it can send and receive. Idempotent. */
  start(): Promise<void>;
  /** Take the link down and release what it holds (sockets, ports). Idempotent. */
  stop(): Promise<void>;
  /**
   * Hand one frame to the medium. Resolves when it has been handed over (for links that
   * emulate a radio: after its time on air). Rejects with RadioError `FRAME_TOO_LARGE` over
   * `mtu`, `FRAME_INVALID` if not a Uint8Array, `LINK_DOWN` when the link is not up.
   * The bytes are copied: the caller may reuse its buffer.
   */
  send(frame: Uint8Array, options?: SendOptions): Promise<void>;
  /** Subscribe to an event; returns a function that unsubscribes. Listeners must not throw. */
  on<E extends keyof LinkEvents>(event: E, listener: LinkListener<E>): () => void;
  /** Unsubscribe a listener added with `on`. */
  off<E extends keyof LinkEvents>(event: E, listener: LinkListener<E>): void;
  /** A snapshot of the counters. */
  stats(): LinkStats;
}

/** A typed listener set for the `Link` events, for link implementations. */
export class LinkEmitter {
  readonly #listeners: { [E in keyof LinkEvents]: Set<LinkListener<E>> } = {
    frame: new Set(),
    up: new Set(),
    down: new Set(),
  };

  /** Adds a listener; returns its unsubscribe function. */
  on<E extends keyof LinkEvents>(event: E, listener: LinkListener<E>): () => void {
    this.#listeners[event].add(listener);
    return () => this.off(event, listener);
  }

  off<E extends keyof LinkEvents>(event: E, listener: LinkListener<E>): void {
    this.#listeners[event].delete(listener);
  }

  /** Calls every listener of `event` in subscription order. */
  emit<E extends keyof LinkEvents>(event: E, ...args: LinkEvents[E]): void {
    for (const listener of [...this.#listeners[event]]) listener(...args);
  }
}

/** Fresh zeroed counters. */
export function createLinkStats(): LinkStats {
  return { framesOut: 0, framesIn: 0, bytesOut: 0, bytesIn: 0, airtimeMs: 0, dropped: 0 };
}

/**
 * The send-time checks every link makes, in the same order, and a private copy of the frame.
 * Throws RadioError `FRAME_INVALID`, `LINK_DOWN` or `FRAME_TOO_LARGE`.
 */
export function checkOutgoingFrame(link: Pick<Link, 'spec' | 'mtu' | 'up'>, frame: Uint8Array): Uint8Array {
  if (!(frame instanceof Uint8Array)) {
    throw new RadioError('FRAME_INVALID', `${link.spec}: a frame must be a Uint8Array`);
  }
  if (!link.up) throw new RadioError('LINK_DOWN', `${link.spec}: link is down`);
  if (frame.length > link.mtu) {
    throw new RadioError('FRAME_TOO_LARGE', `${link.spec}: frame of ${frame.length} bytes exceeds the MTU of ${link.mtu}`);
  }
  return Uint8Array.from(frame);
}
