/**
 * A radio-like broadcast link over UDP (SPEC §2, `udp://HOST:PORT?peer=HOST:PORT&...`): bind
 * one socket, send every frame to each configured peer, accept frames only from configured
 * peers (others are dropped and counted). Lets several nodes on one machine or LAN form any
 * topology.
 *
 * With a LoRa preset the link behaves like that radio: frames of at most 255 bytes, sends
 * serialised, each held for its time on air before it reaches the peers, and the airtime
 * counted. Duty-cycle limiting is not done here: the `beforeSend` hook is where a governor
 * (radio/duty-cycle.ts) is plugged in, so no send can bypass it. Without a preset the link is
 * as fast as UDP with a safe MTU of 1200 bytes.
 *
 * Hosts are IP literals (IPv4 or IPv6); the socket family follows the bind host and every
 * peer must be of the same family.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { setTimeout as sleepReal } from 'node:timers/promises';
import { RadioError } from './errors.ts';
import {
  checkOutgoingFrame,
  createLinkStats,
  LinkEmitter,
  type Clock,
  type Link,
  type LinkEvents,
  type LinkListener,
  type LinkStats,
} from './link.ts';
import { loraAirtimeMs, MAX_LORA_PAYLOAD, type LoraPreset } from './lora-airtime.ts';

/** One UDP address: an IP literal (IPv6 without brackets) and a port. */
export interface UdpEndpoint {
  host: string;
  port: number;
}

/** Largest UDP payload that crosses ordinary networks without IP fragmentation. */
export const UDP_SAFE_MTU = 1200;

/** Nominal bit rate of a UDP link without preset (it is as fast as the host's network). */
export const UDP_NOMINAL_BIT_RATE = 100_000_000;

/** Options of a UDP link. */
export interface UdpLinkOptions {
  /** Where to bind; port 0 picks a free port (see `UdpLink.address()`). */
  bind: UdpEndpoint;
  /** Where every frame goes, and the only senders accepted. */
  peers: UdpEndpoint[];
  /** Emulate this LoRa radio: MTU 255, sends held for their airtime and serialised. */
  preset?: LoraPreset;
  /** Shown as `link.spec` (default: built from bind and peers). */
  spec?: string;
  /**
   * Hook awaited before each frame goes on air, with its airtime (ms; 0 without preset).
   * This is where the duty-cycle governor plugs in: it may wait until the budget allows the
   * send, or throw (the send then rejects with that error and nothing is sent). Sends are
   * serialised with a preset, so the hook sees them one at a time.
   */
  beforeSend?: (airtimeMs: number) => Promise<void>;
}

/** Components a UDP link needs. */
export interface UdpLinkDeps {
  /** Stamps `receivedAt`. */
  clock: Clock;
  /** Waits for a frame's time on air (default: a real timer). Tests pass a fake. */
  sleep?: (ms: number) => Promise<void>;
}

/** A UDP link; `address()` tells where it is bound once up. */
export interface UdpLink extends Link {
  /** The bound address (with the real port when bound to port 0); undefined while down. */
  address(): UdpEndpoint | undefined;
}

/** `HOST:PORT`, with IPv6 hosts in brackets. */
export function formatEndpoint(e: UdpEndpoint): string {
  return isIP(e.host) === 6 ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** LoRa raw bit rate: SF · BW / 2^SF · 4 / (4 + CR). */
function loraBitRate(p: LoraPreset): number {
  return (p.sf * p.bw) / 2 ** p.sf * (4 / (4 + p.cr));
}

/** Strips the IPv4-mapped prefix so `::ffff:127.0.0.1` matches `127.0.0.1`. */
function normalHost(host: string): string {
  const h = host.toLowerCase();
  return h.startsWith('::ffff:') && isIP(h.slice(7)) === 4 ? h.slice(7) : h;
}

function checkEndpoint(e: UdpEndpoint, what: string, allowPortZero: boolean): void {
  if (!e || typeof e.host !== 'string' || isIP(e.host) === 0) {
    throw new RadioError('LINK_OPTIONS_INVALID', `${what} host must be an IP address, got ${JSON.stringify(e?.host)}`);
  }
  const min = allowPortZero ? 0 : 1;
  if (!Number.isInteger(e.port) || e.port < min || e.port > 65535) {
    throw new RadioError('LINK_OPTIONS_INVALID', `${what} port must be an integer ${min}..65535, got ${e.port}`);
  }
}

class UdpLinkImpl implements UdpLink {
  readonly spec: string;
  readonly mtu: number;
  readonly bitRate: number;
  readonly mode = 'broadcast' as const;
  readonly #options: UdpLinkOptions;
  readonly #clock: Clock;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #peerKeys: Set<string>;
  readonly #events = new LinkEmitter();
  readonly #stats = createLinkStats();
  #socket: Socket | undefined;
  #bound: UdpEndpoint | undefined;
  #starting: Promise<void> | undefined;
  /** Tail of the serialised send queue (preset emulation). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: UdpLinkOptions, deps: UdpLinkDeps) {
    checkEndpoint(options.bind, 'bind', true);
    if (!Array.isArray(options.peers) || options.peers.length === 0) {
      throw new RadioError('LINK_OPTIONS_INVALID', 'a UDP link needs at least one peer');
    }
    const family = isIP(options.bind.host);
    for (const peer of options.peers) {
      checkEndpoint(peer, 'peer', false);
      if (isIP(peer.host) !== family) {
        throw new RadioError('LINK_OPTIONS_INVALID', `peer ${formatEndpoint(peer)} is not of the bind address's IP family`);
      }
    }
    this.#options = options;
    this.#clock = deps.clock;
    this.#sleep = deps.sleep ?? ((ms) => sleepReal(ms).then(() => undefined));
    this.#peerKeys = new Set(options.peers.map((p) => `${normalHost(p.host)}|${p.port}`));
    this.mtu = options.preset ? MAX_LORA_PAYLOAD : UDP_SAFE_MTU;
    this.bitRate = options.preset ? loraBitRate(options.preset) : UDP_NOMINAL_BIT_RATE;
    this.spec =
      options.spec ??
      `udp://${formatEndpoint(options.bind)}?${options.peers.map((p) => `peer=${formatEndpoint(p)}`).join('&')}` +
        (options.preset ? `&preset=${options.preset.name}` : '');
  }

  get up(): boolean {
    return this.#socket !== undefined;
  }

  address(): UdpEndpoint | undefined {
    return this.#bound ? { ...this.#bound } : undefined;
  }

  async start(): Promise<void> {
    if (this.#socket) return;
    // Concurrent start() calls share one bind, so no second socket is made and leaked.
    this.#starting ??= this.#bind().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #bind(): Promise<void> {
    const { bind } = this.#options;
    const socket = createSocket({ type: isIP(bind.host) === 6 ? 'udp6' : 'udp4', ipv6Only: isIP(bind.host) === 6 });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        socket.close();
        reject(new RadioError('LINK_START_FAILED', `${this.spec}: cannot bind ${formatEndpoint(bind)}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.bind(bind.port, bind.host, () => {
        socket.off('error', onError);
        resolve();
      });
    });
    this.#bound = { host: bind.host, port: socket.address().port };
    this.#socket = socket;
    socket.on('message', (msg, rinfo) => this.#receive(msg, rinfo));
    // A socket error after bind means the medium is gone: go down rather than crash.
    socket.on('error', () => void this.#close(socket));
    this.#events.emit('up');
  }

  async stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    const socket = this.#socket;
    if (socket) await this.#close(socket);
  }

  async #close(socket: Socket): Promise<void> {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#bound = undefined;
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
    this.#events.emit('down');
  }

  #receive(msg: Buffer, rinfo: RemoteInfo): void {
    if (!this.#socket) return;
    if (!this.#peerKeys.has(`${normalHost(rinfo.address)}|${rinfo.port}`) || msg.length > this.mtu) {
      this.#stats.dropped++;
      return;
    }
    const frame = Uint8Array.from(msg);
    this.#stats.framesIn++;
    this.#stats.bytesIn += frame.length;
    this.#events.emit('frame', frame, {
      from: formatEndpoint({ host: normalHost(rinfo.address), port: rinfo.port }),
      receivedAt: this.#clock.now(),
    });
  }

  async send(frame: Uint8Array): Promise<void> {
    const copy = checkOutgoingFrame(this, frame);
    if (!this.#options.preset) {
      await this.#options.beforeSend?.(0);
      return this.#transmit(copy, 0);
    }
    const preset = this.#options.preset;
    const run = async () => {
      const airtime = loraAirtimeMs(preset, copy.length);
      await this.#options.beforeSend?.(airtime);
      if (!this.up) throw new RadioError('LINK_DOWN', `${this.spec}: link went down before the frame was sent`);
      await this.#sleep(airtime);
      if (!this.up) throw new RadioError('LINK_DOWN', `${this.spec}: link went down while the frame was on air`);
      await this.#transmit(copy, airtime);
    };
    const result = this.#queue.then(run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Sends to every peer; a peer that cannot be reached is counted as dropped. */
  async #transmit(frame: Uint8Array, airtimeMs: number): Promise<void> {
    const socket = this.#socket;
    if (!socket) throw new RadioError('LINK_DOWN', `${this.spec}: link is down`);
    const results = await Promise.all(
      this.#options.peers.map(
        (peer) =>
          new Promise<boolean>((resolve) => {
            try {
              socket.send(frame, peer.port, peer.host, (err) => resolve(!err));
            } catch {
              resolve(false); // the socket closed under us
            }
          }),
      ),
    );
    const failed = results.filter((ok) => !ok).length;
    this.#stats.dropped += failed;
    if (failed === results.length) throw new RadioError('SEND_FAILED', `${this.spec}: no peer could be sent the frame`);
    this.#stats.framesOut++;
    this.#stats.bytesOut += frame.length;
    this.#stats.airtimeMs += airtimeMs;
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

/** A UDP link (down until `start()`). Throws RadioError `LINK_OPTIONS_INVALID` on bad options. */
export function createUdpLink(options: UdpLinkOptions, deps: UdpLinkDeps): UdpLink {
  return new UdpLinkImpl(options, deps);
}
