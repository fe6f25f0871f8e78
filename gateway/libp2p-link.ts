/**
 * A libp2p node as a `Link` (radio/link.ts): households with an internet line or on one LAN
 * sync over libp2p exactly as they do over radio, only faster. The node runs TCP and
 * WebSockets, Noise, Yamux, identify and ping (so ordinary libp2p tools can reach and
 * diagnose it), and optionally mDNS discovery on the local network (`--lan`).
 *
 * Frames travel on the protocol {@link SYNC_PROTOCOL}. Each side opens one stream per peer
 * for what *it* sends and only reads the streams its peers open, so no two streams carry the
 * same frames and neither side races the other to open one. On a stream every frame is
 * length-prefixed:
 *
 *   unsigned varint (LEB128, at most 3 bytes) frame length n (0..mtu), then n bytes
 *
 * A send is a broadcast: it goes to every connected peer speaking the protocol. Frames for a
 * configured peer (`peers`) that is not connected yet wait in a short bounded queue, so what
 * a node says just after start is not lost while the dial is under way. Configured peers are
 * kept connected: redialled with exponential backoff (250 ms doubling to 60 s, jittered).
 *
 * Hostile peers (an internet gateway meets them): inbound connections are limited in total
 * and per remote host before any handshake; a frame over the MTU or a malformed length
 * prefix resets the stream and hangs up; each peer has a token bucket for frames and bytes
 * (strangers get less than peers bound to a known household, see `householdOf`): a peer over
 * its rate has its stream paused, so Yamux flow control holds it back and nothing is lost, and
 * one that pushes on regardless is hung up on. A beacon that speaks for a household other than
 * the one the directory binds the peer to is dropped (gateway/beacon-claim.ts). Everything
 * refused is counted (`gatewayStats`).
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { identify, type Identify } from '@libp2p/identify';
import type { Connection, Libp2p, MultiaddrConnection, PeerId, Stream } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { webSockets } from '@libp2p/websockets';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { RadioError } from '../radio/errors.ts';
import {
  checkOutgoingFrame,
  createLinkStats,
  LinkEmitter,
  type Clock,
  type Link,
  type LinkEvents,
  type LinkListener,
  type LinkStats,
} from '../radio/link.ts';
import { beaconClaimHolds, beaconSender, type PeerBindings } from './beacon-claim.ts';
import { GatewayError } from './errors.ts';

/** The protocol id sync frames travel on. */
export const SYNC_PROTOCOL = '/citizen/sync/1.0.0';

/** Largest frame: big enough that sync messages rarely need fragments, small enough to bound buffers. */
export const LIBP2P_MTU = 16_384;

/** Nominal bit rate (a LAN or internet line): sync picks its fast timing for it. */
export const LIBP2P_NOMINAL_BIT_RATE = 100_000_000;

/** Limits that keep a gateway on the internet serving while hostile peers knock. */
export interface Libp2pLimits {
  /** Inbound connections (before and after the handshake) at once. Default 64. */
  maxInboundConnections: number;
  /** Inbound connections from one remote host at once. Default 8. */
  maxConnectionsPerHost: number;
  /** All connections at once (libp2p's connection manager). Default 128. */
  maxConnections: number;
  /** New inbound connections one remote host may open per second (a burst of twice that). Default 10. */
  connectionsPerHostPerSecond: number;
  /** Frames per second a peer bound to a known household may send (bucket holds 2 s). Default 1000. */
  knownFramesPerSecond: number;
  /** Bytes per second for such a peer. Default 8 MiB. */
  knownBytesPerSecond: number;
  /** Frames per second for a stranger. Default 200. */
  strangerFramesPerSecond: number;
  /** Bytes per second for a stranger. Default 1 MiB. */
  strangerBytesPerSecond: number;
  /**
   * Frames of a peer waiting for its rate while its stream is paused; a peer that pushes more
   * (ignoring flow control) is hung up on. Default 2048.
   */
  maxBacklogFrames: number;
  /** Frames kept for a configured peer that is not connected yet. Default 64. */
  pendingFrames: number;
  /** How long such a frame may wait (ms). Default 10 s. */
  pendingMaxAgeMs: number;
}

export const DEFAULT_LIBP2P_LIMITS: Libp2pLimits = {
  maxInboundConnections: 64,
  maxConnectionsPerHost: 8,
  maxConnections: 128,
  connectionsPerHostPerSecond: 10,
  knownFramesPerSecond: 1000,
  knownBytesPerSecond: 8 * 1024 * 1024,
  strangerFramesPerSecond: 200,
  strangerBytesPerSecond: 1024 * 1024,
  maxBacklogFrames: 2048,
  pendingFrames: 64,
  pendingMaxAgeMs: 10_000,
};

export interface Libp2pLinkOptions {
  /** 32-byte Ed25519 seed of the node's libp2p key (its peer id follows from it). */
  keySeed: Uint8Array;
  /** Multiaddrs to listen on (TCP, or TCP with /ws for WebSockets). */
  listen: string[];
  /** Peers to keep connected: full multiaddrs ending in /p2p/<peer id>. */
  peers?: string[];
  /** Discover peers on the local network with mDNS and connect to them. */
  mdns?: boolean | { intervalMs?: number; serviceTag?: string };
  limits?: Partial<Libp2pLimits>;
  /** Shown as `link.spec`. */
  spec?: string;
}

export interface Libp2pLinkDeps {
  clock: Clock;
  /**
   * The household a peer is bound to by a gateway statement in the directory (mesh/directory.ts,
   * role Gateway), from its raw Ed25519 public key; null for a stranger. Bound peers get the
   * larger rate.
   */
  householdOf?: (peerPublicKey: Uint8Array) => string | null;
  /**
   * Peer keys and household key ids as the gateway statements bind them: a beacon from a peer
   * that contradicts them is dropped (`dropped.household-mismatch`, gateway/beacon-claim.ts).
   * Absent: beacons are not cross-checked.
   */
  bindings?: PeerBindings;
  /** One line about something a person may want to know (a peer refused, hung up). */
  log?: (line: string) => void;
  /** Uniform in [0, 1) for backoff jitter. */
  random?: () => number;
}

/** What a peer looks like from here. */
export interface Libp2pPeerView {
  peer_id: string;
  household: string | null;
  addr: string;
  sending: boolean;
  frames_in: number;
}

/** The counters of the gateway side of the link, for /api/status and tests. */
export interface Libp2pGatewayStats {
  connections: number;
  /** Inbound connections still in their handshake. */
  handshaking: number;
  peers: Libp2pPeerView[];
  /** Inbound connections refused, by reason. */
  refused: { [reason: string]: number };
  /** Frames and streams thrown away, by reason. */
  dropped: { [reason: string]: number };
  /** Peers hung up on, by reason. */
  hung_up: { [reason: string]: number };
  /** Times a peer's stream was paused because it sent faster than its rate. */
  throttled: number;
}

export interface Libp2pLink extends Link {
  /** The peer id (base58), known before start. */
  readonly peerId: string;
  /** The raw Ed25519 public key behind the peer id (what a gateway statement binds). */
  readonly peerKey: Uint8Array;
  /** Full multiaddrs we listen on, ending in /p2p/<peer id>; empty while down. */
  addrs(): string[];
  gatewayStats(): Libp2pGatewayStats;
  /** The running libp2p node (tests and diagnostics); undefined while down. */
  node(): Libp2p<{ identify: Identify; ping: Ping }> | undefined;
}

type Node = Libp2p<{ identify: Identify; ping: Ping }>;

interface Bucket {
  frames: number;
  bytes: number;
  at: number;
}

interface PeerState {
  id: PeerId;
  out?: Stream;
  opening?: Promise<void>;
  bucket: Bucket;
  framesIn: number;
}

interface Pending {
  frame: Uint8Array;
  at: number;
}

const MAX_VARINT_BYTES = 3; // 3 × 7 bits covers LIBP2P_MTU

/** The 32-byte Ed25519 public key behind an Ed25519 peer id, or null for other key types. */
export function ed25519KeyOfPeer(peer: PeerId): Uint8Array | null {
  return peer.type === 'Ed25519' && peer.publicKey ? peer.publicKey.raw : null;
}

/**
 * The libp2p key seed of a household, derived from its Ed25519 seed (HKDF-SHA256, info
 * "citizen-libp2p-v1"): the peer id stays the same across restarts with no key file of its
 * own, and reveals nothing of the household key. The binding between the two is the signed
 * gateway statement (mesh/directory.ts), not this derivation.
 */
export function deriveLibp2pSeed(householdSeed: Uint8Array): Uint8Array {
  return hkdf(sha256, householdSeed, undefined, new TextEncoder().encode('citizen-libp2p-v1'), 32);
}

/** The peer id (base58) of the libp2p key made from `keySeed`. */
export async function peerIdOfSeed(keySeed: Uint8Array): Promise<string> {
  const key = await generateKeyPairFromSeed('Ed25519', keySeed);
  const { peerIdFromPrivateKey } = await import('@libp2p/peer-id');
  return peerIdFromPrivateKey(key).toString();
}

/** Encodes the varint length prefix of a frame. */
export function encodeFrameHeader(length: number): Uint8Array {
  const out: number[] = [];
  let n = length;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Uint8Array.from(out);
}

/**
 * Decodes length-prefixed frames from a stream's bytes, one chunk at a time. Throws
 * GatewayError FRAME_OVERSIZED for a length over `mtu` and FRAME_MALFORMED for a prefix
 * longer than 3 bytes; the stream is then useless.
 */
export class FrameDecoder {
  #buffer = new Uint8Array(256);
  /** Unread bytes are #buffer[#start, #end). */
  #start = 0;
  #end = 0;
  constructor(private readonly mtu: number) {}

  push(chunk: Uint8Array): Uint8Array[] {
    this.#append(chunk);
    const frames: Uint8Array[] = [];
    for (;;) {
      let length = 0;
      let i = this.#start;
      let complete = false;
      while (i < this.#end) {
        const b = this.#buffer[i]!;
        length |= (b & 0x7f) << (7 * (i - this.#start));
        i++;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
        if (i - this.#start >= MAX_VARINT_BYTES) throw new GatewayError('FRAME_MALFORMED', 'frame length prefix is too long');
      }
      if (!complete) break;
      if (length > this.mtu) throw new GatewayError('FRAME_OVERSIZED', `a frame of ${length} bytes exceeds the MTU of ${this.mtu}`);
      if (this.#end - i < length) break;
      frames.push(this.#buffer.slice(i, i + length));
      this.#start = i + length;
    }
    return frames;
  }

  #append(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buffer.length) {
      const unread = this.#end - this.#start;
      // Never more than one frame and its prefix is waiting, so the buffer stays bounded.
      const size = Math.max(this.#buffer.length, 2 * (unread + chunk.length));
      const next = size === this.#buffer.length ? this.#buffer : new Uint8Array(size);
      next.set(this.#buffer.subarray(this.#start, this.#end), 0);
      this.#buffer = next;
      this.#start = 0;
      this.#end = unread;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}

/** A multiaddr's text without its trailing /p2p/<peer id>. */
function withoutPeerId(addr: string): string {
  return addr.replace(/\/p2p\/[^/]+$/, '');
}

function hostOf(addr: Multiaddr): string {
  const parts = addr.toString().split('/');
  return parts[2] ?? addr.toString();
}

function count(map: Map<string, number>, reason: string): void {
  map.set(reason, (map.get(reason) ?? 0) + 1);
}

class Libp2pLinkImpl implements Libp2pLink {
  readonly spec: string;
  readonly mtu = LIBP2P_MTU;
  readonly bitRate = LIBP2P_NOMINAL_BIT_RATE;
  readonly mode = 'broadcast' as const;
  peerId = '';
  peerKey: Uint8Array = new Uint8Array(32);
  readonly #options: Libp2pLinkOptions;
  readonly #limits: Libp2pLimits;
  readonly #clock: Clock;
  readonly #householdOf: (key: Uint8Array) => string | null;
  readonly #bindings: PeerBindings | undefined;
  readonly #log: (line: string) => void;
  readonly #random: () => number;
  readonly #events = new LinkEmitter();
  readonly #stats = createLinkStats();
  readonly #peers = new Map<string, PeerState>();
  readonly #configured: { addr: Multiaddr; peer: string }[];
  readonly #pending = new Map<string, Pending[]>();
  readonly #redials = new Map<string, { timer: NodeJS.Timeout | null; attempt: number }>();
  readonly #inbound = new Set<MultiaddrConnection>();
  /** Inbound connections accepted by the gater whose handshake has not finished. */
  readonly #handshaking = new Set<MultiaddrConnection>();
  readonly #perHost = new Map<string, number>();
  readonly #hostBuckets = new Map<string, { tokens: number; at: number }>();
  readonly #refused = new Map<string, number>();
  readonly #dropped = new Map<string, number>();
  readonly #hungUp = new Map<string, number>();
  readonly #throttled = new Map<string, number>();
  #node: Node | undefined;
  #starting: Promise<void> | undefined;
  #generation = 0;

  constructor(options: Libp2pLinkOptions, deps: Libp2pLinkDeps) {
    if (!(options.keySeed instanceof Uint8Array) || options.keySeed.length !== 32) {
      throw new GatewayError('LINK_OPTIONS_INVALID', 'the libp2p key seed must be 32 bytes');
    }
    if (!Array.isArray(options.listen)) throw new GatewayError('LINK_OPTIONS_INVALID', 'listen must be a list of multiaddrs');
    for (const a of options.listen) parseAddr(a, 'listen', false);
    this.#configured = (options.peers ?? []).map((a) => {
      const addr = parseAddr(a, 'peer', true);
      return { addr, peer: addr.getComponents().findLast((c) => c.name === 'p2p')!.value! };
    });
    this.#options = options;
    this.#limits = { ...DEFAULT_LIBP2P_LIMITS, ...options.limits };
    this.#clock = deps.clock;
    this.#householdOf = deps.householdOf ?? (() => null);
    this.#bindings = deps.bindings;
    this.#log = deps.log ?? (() => undefined);
    this.#random = deps.random ?? Math.random;
    const query = [
      ...options.listen.map((a) => `listen=${a}`),
      ...(options.peers ?? []).map((a) => `peer=${a}`),
      ...(options.mdns ? ['mdns'] : []),
    ];
    this.spec = options.spec ?? `libp2p${query.length ? `?${query.join('&')}` : ''}`;
  }

  /** Resolves the peer id from the key seed; called by the factory before the link is handed out. */
  async init(): Promise<this> {
    const key = await generateKeyPairFromSeed('Ed25519', this.#options.keySeed);
    this.peerId = await peerIdOfSeed(this.#options.keySeed);
    this.peerKey = key.publicKey.raw;
    return this;
  }

  get up(): boolean {
    return this.#node !== undefined;
  }

  node(): Node | undefined {
    return this.#node;
  }

  addrs(): string[] {
    return this.#node ? this.#node.getMultiaddrs().map((a) => a.toString()) : [];
  }

  async start(): Promise<void> {
    if (this.#node) return;
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    const privateKey = await generateKeyPairFromSeed('Ed25519', this.#options.keySeed);
    const lan = this.#options.mdns;
    const limits = this.#limits;
    let node: Node;
    try {
      node = await createLibp2p({
        privateKey,
        addresses: { listen: this.#options.listen },
        transports: [tcp(), webSockets()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        services: { identify: identify(), ping: ping() },
        peerDiscovery: lan ? [mdns({ interval: typeof lan === 'object' ? lan.intervalMs ?? 10_000 : 10_000, ...(typeof lan === 'object' && lan.serviceTag ? { serviceTag: lan.serviceTag } : {}) })] : [],
        connectionManager: {
          maxConnections: limits.maxConnections,
          // Our gater (#gateInbound) limits and counts inbound connections; libp2p's own
          // per-host threshold would refuse first, uncounted.
          maxIncomingPendingConnections: limits.maxInboundConnections + 1,
          inboundConnectionThreshold: 1_000_000,
          inboundUpgradeTimeout: 5_000,
          dialTimeout: 5_000,
        },
        connectionGater: {
          denyInboundConnection: (maConn) => this.#gateInbound(maConn),
          // Private addresses are the point of a LAN and of tests on loopback.
          denyDialMultiaddr: () => false,
        },
        start: false,
      });
      await node.handle(SYNC_PROTOCOL, (stream, connection) => this.#inboundStream(stream, connection), {
        maxInboundStreams: 2,
        maxOutboundStreams: 2,
      });
      await node.start();
    } catch (cause) {
      throw new RadioError('LINK_START_FAILED', `${this.spec}: cannot start libp2p: ${startFailure(cause)}`, { cause });
    }
    this.#node = node;
    const generation = ++this.#generation;
    node.addEventListener('peer:identify', (e) => {
      if (e.detail.protocols.includes(SYNC_PROTOCOL)) void this.#openSender(e.detail.peerId, e.detail.connection);
    });
    node.addEventListener('peer:disconnect', (e) => this.#peerGone(e.detail));
    node.addEventListener('connection:open', (e) => {
      if (e.detail.direction !== 'inbound') return;
      // The connection's address ends in /p2p/<remote peer>, the raw connection's does not.
      const remote = withoutPeerId(e.detail.remoteAddr.toString());
      for (const maConn of this.#handshaking) if (withoutPeerId(maConn.remoteAddr.toString()) === remote) this.#handshaking.delete(maConn);
    });
    node.addEventListener('peer:discovery', (e) => {
      if (this.#node !== node || this.#peers.has(e.detail.id.toString())) return;
      node.dial(e.detail.id).then(
        () => undefined,
        () => count(this.#dropped, 'lan-dial-failed'),
      );
    });
    this.#events.emit('up');
    for (const { peer } of this.#configured) this.#dialConfigured(peer, generation, 0);
  }

  async stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    const node = this.#node;
    if (!node) return;
    this.#node = undefined;
    this.#generation++;
    for (const r of this.#redials.values()) if (r.timer) clearTimeout(r.timer);
    this.#redials.clear();
    this.#peers.clear();
    this.#pending.clear();
    try {
      await node.stop();
    } catch {
      // stopping is best effort: the node is gone either way
    }
    this.#inbound.clear();
    this.#handshaking.clear();
    this.#perHost.clear();
    this.#events.emit('down');
  }

  // ---- connections ----

  #gateInbound(maConn: MultiaddrConnection): boolean {
    const host = hostOf(maConn.remoteAddr);
    const onHost = this.#perHost.get(host) ?? 0;
    // Every attempt costs a token, so a host cannot dodge its rate by hitting the other limits.
    if (!this.#takeHostToken(host)) {
      count(this.#refused, 'host-rate');
      return true;
    }
    if (this.#inbound.size >= this.#limits.maxInboundConnections) {
      count(this.#refused, 'connection-limit');
      return true;
    }
    if (onHost >= this.#limits.maxConnectionsPerHost) {
      count(this.#refused, 'host-limit');
      return true;
    }
    this.#inbound.add(maConn);
    this.#handshaking.add(maConn);
    this.#perHost.set(host, onHost + 1);
    maConn.addEventListener(
      'close',
      () => {
        // Closed before it became a libp2p connection: garbage, a wrong protocol or a timeout.
        if (this.#handshaking.delete(maConn)) count(this.#refused, 'handshake-failed');
        if (!this.#inbound.delete(maConn)) return;
        const n = (this.#perHost.get(host) ?? 1) - 1;
        if (n <= 0) this.#perHost.delete(host);
        else this.#perHost.set(host, n);
      },
      { once: true },
    );
    return false;
  }

  #takeHostToken(host: string): boolean {
    const rate = this.#limits.connectionsPerHostPerSecond;
    const now = this.#clock.now();
    let bucket = this.#hostBuckets.get(host);
    if (!bucket) {
      if (this.#hostBuckets.size >= 4096) this.#hostBuckets.clear(); // forget, rather than grow without end
      bucket = { tokens: 2 * rate, at: now };
      this.#hostBuckets.set(host, bucket);
    }
    bucket.tokens = Math.min(2 * rate, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  #dialConfigured(peer: string, generation: number, attempt: number): void {
    const node = this.#node;
    if (!node || generation !== this.#generation) return;
    const target = this.#configured.filter((c) => c.peer === peer).map((c) => c.addr);
    const state = this.#redials.get(peer) ?? { timer: null, attempt };
    state.attempt = attempt;
    state.timer = null;
    this.#redials.set(peer, state);
    node.dial(target).then(
      () => {
        state.attempt = 0;
      },
      () => {
        if (generation !== this.#generation) return;
        const delay = Math.min(60_000, 250 * 2 ** Math.min(attempt, 8)) * (0.75 + this.#random() / 2);
        state.timer = setTimeout(() => this.#dialConfigured(peer, generation, attempt + 1), delay);
        state.timer.unref?.();
      },
    );
  }

  #peerGone(peer: PeerId): void {
    const key = peer.toString();
    this.#peers.delete(key);
    this.#dropPendingUnlessConfigured(key);
    const redial = this.#redials.get(key);
    if (redial && !redial.timer && this.#node) {
      // A configured peer went away: try again soon, backing off if it stays away.
      const generation = this.#generation;
      redial.timer = setTimeout(() => this.#dialConfigured(key, generation, redial.attempt + 1), 250 * (0.75 + this.#random() / 2));
      redial.timer.unref?.();
    }
  }

  /**
   * Frames held for a peer we did not dial (it dialled us; our sender to it was opening) go
   * when it goes or its sender fails: nothing will take them. A configured peer keeps its own
   * for the redial.
   */
  #dropPendingUnlessConfigured(key: string): void {
    if (!this.#configured.some((c) => c.peer === key)) this.#pending.delete(key);
  }

  #peerState(peer: PeerId): PeerState {
    const key = peer.toString();
    let state = this.#peers.get(key);
    if (!state) {
      state = { id: peer, bucket: { frames: 0, bytes: 0, at: this.#clock.now() }, framesIn: 0 };
      const rates = this.#rates(peer);
      state.bucket.frames = rates.frames * 2;
      state.bucket.bytes = rates.bytes * 2;
      this.#peers.set(key, state);
    }
    return state;
  }

  #rates(peer: PeerId): { frames: number; bytes: number } {
    const key = ed25519KeyOfPeer(peer);
    const known = key !== null && this.#householdOf(key) !== null;
    return known
      ? { frames: this.#limits.knownFramesPerSecond, bytes: this.#limits.knownBytesPerSecond }
      : { frames: this.#limits.strangerFramesPerSecond, bytes: this.#limits.strangerBytesPerSecond };
  }

  async #openSender(peer: PeerId, connection: Connection): Promise<void> {
    const node = this.#node;
    if (!node) return;
    const state = this.#peerState(peer);
    if (state.out || state.opening) return;
    state.opening = (async () => {
      try {
        const stream = await connection.newStream(SYNC_PROTOCOL);
        if (this.#node !== node || this.#peers.get(peer.toString()) !== state) {
          stream.abort(new Error('link stopped'));
          return;
        }
        stream.maxWriteBufferLength = 1024 * 1024;
        state.out = stream;
        stream.addEventListener('close', () => {
          if (state.out === stream) state.out = undefined;
          // Still connected another way: open a new sender there.
          const other = this.#node?.getConnections(peer).find((c) => c.status === 'open');
          if (other && this.#peers.get(peer.toString()) === state) void this.#openSender(peer, other);
        });
        const waiting = this.#pending.get(peer.toString());
        this.#pending.delete(peer.toString());
        const now = this.#clock.now();
        for (const p of waiting ?? []) if (now - p.at <= this.#limits.pendingMaxAgeMs) this.#write(state, p.frame);
      } catch {
        count(this.#dropped, 'stream-open-failed');
      } finally {
        state.opening = undefined;
        if (!state.out) this.#dropPendingUnlessConfigured(peer.toString());
      }
    })();
    return state.opening;
  }

  // ---- receiving ----

  #inboundStream(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer;
    const state = this.#peerState(peer);
    const decoder = new FrameDecoder(this.mtu);
    stream.maxReadBufferLength = 4 * this.mtu;
    stream.addEventListener('message', (event) => {
      if (!this.#node) return;
      const data = event.data;
      const chunk = data instanceof Uint8Array ? data : data.subarray();
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        const reason = (err as GatewayError).code === 'FRAME_OVERSIZED' ? 'oversized' : 'malformed';
        count(this.#dropped, reason);
        this.#stats.dropped++;
        this.#hangUp(peer, connection, reason);
        stream.abort(err as Error);
        return;
      }
      backlog.push(...frames);
      if (backlog.length > this.#limits.maxBacklogFrames) {
        // A peer that ignores the muxer's flow control and keeps pushing: hang up.
        count(this.#dropped, 'rate');
        this.#stats.dropped += backlog.length;
        backlog.length = 0;
        this.#hangUp(peer, connection, 'rate');
        return;
      }
      if (!waiting) drain();
    });
    // Frames beyond the peer's rate wait here while the stream is paused (Yamux then holds
    // the sender back), so a fast peer is slowed to its rate rather than losing frames.
    const backlog: Uint8Array[] = [];
    let waiting: NodeJS.Timeout | undefined;
    const drain = () => {
      waiting = undefined;
      while (backlog.length > 0) {
        if (!this.#node) return;
        const waitMs = this.#take(state, peer, backlog[0]!.length);
        if (waitMs > 0) {
          if (stream.readStatus !== 'paused') {
            count(this.#throttled, 'rate');
            stream.pause();
          }
          waiting = setTimeout(drain, Math.max(1, Math.ceil(waitMs)));
          waiting.unref?.();
          return;
        }
        this.#deliver(state, peer, backlog.shift()!);
      }
      if (stream.readStatus === 'paused') stream.resume();
      finish();
    };
    // The peer closed its end and every frame it sent is delivered: close ours (we never write on
    // a stream a peer opened), so the stream is gone and no longer counts against the
    // connection's few inbound sync streams; a peer that opens a new one is heard.
    let ended = false;
    const finish = () => {
      if (ended && backlog.length === 0 && waiting === undefined) void stream.close().catch(() => stream.abort(new Error('closing failed')));
    };
    stream.addEventListener('end', () => {
      ended = true;
      finish();
    });
    stream.addEventListener('close', () => {
      if (waiting) clearTimeout(waiting);
      backlog.length = 0;
    });
    // Our own sender towards a peer that just opened one to us (identify may still be running).
    if (!state.out) void this.#openSender(peer, connection);
  }

  #deliver(state: PeerState, peer: PeerId, frame: Uint8Array): void {
    const claimed = this.#bindings ? beaconSender(frame) : null;
    if (claimed && !beaconClaimHolds(ed25519KeyOfPeer(peer), claimed, this.#bindings!)) {
      // A replayed or misattributed beacon: the peer would pass for another household.
      count(this.#dropped, 'household-mismatch');
      if (this.#dropped.get('household-mismatch') === 1) this.#log(`libp2p: dropped a beacon from ${peer.toString()} that speaks for another household`);
      this.#stats.dropped++;
      return;
    }
    state.framesIn++;
    this.#stats.framesIn++;
    this.#stats.bytesIn += frame.length;
    this.#events.emit('frame', frame, { from: peer.toString(), receivedAt: this.#clock.now() });
  }

  /**
   * Token bucket holding two seconds of the peer's rate: takes one frame of `bytes` and
   * returns 0, or takes nothing and returns how many ms until it could.
   */
  #take(state: PeerState, peer: PeerId, bytes: number): number {
    const rates = this.#rates(peer);
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - state.bucket.at) / 1000;
    state.bucket.at = now;
    state.bucket.frames = Math.min(rates.frames * 2, state.bucket.frames + elapsed * rates.frames);
    state.bucket.bytes = Math.min(rates.bytes * 2, state.bucket.bytes + elapsed * rates.bytes);
    if (state.bucket.frames < 1 || state.bucket.bytes < bytes) {
      return Math.max(((1 - state.bucket.frames) / rates.frames) * 1000, ((bytes - state.bucket.bytes) / rates.bytes) * 1000);
    }
    state.bucket.frames -= 1;
    state.bucket.bytes -= bytes;
    return 0;
  }

  #hangUp(peer: PeerId, connection: Connection, reason: string): void {
    count(this.#hungUp, reason);
    this.#log(`libp2p: hung up on ${peer.toString()} (${reason})`);
    connection.abort(new GatewayError('PEER_REFUSED', `hung up: ${reason}`));
  }

  // ---- sending ----

  async send(frame: Uint8Array): Promise<void> {
    const copy = checkOutgoingFrame(this, frame);
    const connected = new Set<string>();
    const opening: string[] = [];
    for (const [key, state] of this.#peers) {
      if (state.out) {
        connected.add(key);
        this.#write(state, copy);
      } else if (state.opening) opening.push(key);
    }
    const now = this.#clock.now();
    // Configured peers not connected yet, and peers whose sender is still opening (a peer that
    // dialled us a moment ago): the frame waits for the sender, as briefly as pendingMaxAgeMs.
    const waiting = new Set([...this.#configured.map((c) => c.peer), ...opening]);
    for (const peer of waiting) {
      if (connected.has(peer)) continue;
      const queue = (this.#pending.get(peer) ?? []).filter((p) => now - p.at <= this.#limits.pendingMaxAgeMs);
      queue.push({ frame: copy, at: now });
      if (queue.length > this.#limits.pendingFrames) {
        queue.shift();
        this.#stats.dropped++;
      }
      this.#pending.set(peer, queue);
    }
    this.#stats.framesOut++;
    this.#stats.bytesOut += copy.length;
  }

  #write(state: PeerState, frame: Uint8Array): void {
    const stream = state.out!;
    // A peer that does not read is not waited for: its frames are dropped, not buffered without end.
    if (stream.writeBufferLength > 512 * 1024) {
      count(this.#dropped, 'peer-slow');
      this.#stats.dropped++;
      return;
    }
    try {
      const header = encodeFrameHeader(frame.length);
      const out = new Uint8Array(header.length + frame.length);
      out.set(header, 0);
      out.set(frame, header.length);
      stream.send(out);
    } catch {
      count(this.#dropped, 'stream-closed');
      this.#stats.dropped++;
    }
  }

  // ---- views ----

  gatewayStats(): Libp2pGatewayStats {
    const node = this.#node;
    const peers: Libp2pPeerView[] = [];
    for (const [key, state] of this.#peers) {
      const keyBytes = ed25519KeyOfPeer(state.id);
      const conn = node?.getConnections(state.id)[0];
      peers.push({
        peer_id: key,
        household: keyBytes ? this.#householdOf(keyBytes) : null,
        addr: conn ? conn.remoteAddr.toString() : '',
        sending: state.out !== undefined,
        frames_in: state.framesIn,
      });
    }
    return {
      connections: node ? node.getConnections().length : 0,
      handshaking: this.#handshaking.size,
      peers,
      refused: Object.fromEntries(this.#refused),
      dropped: Object.fromEntries(this.#dropped),
      hung_up: Object.fromEntries(this.#hungUp),
      throttled: this.#throttled.get('rate') ?? 0,
    };
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

function parseAddr(text: string, what: string, needPeer: boolean): Multiaddr {
  let addr: Multiaddr;
  try {
    addr = multiaddr(text);
  } catch (cause) {
    throw new GatewayError('LINK_OPTIONS_INVALID', `${what} "${text}" is not a multiaddr`, { cause });
  }
  const names = addr.getComponents().map((c) => c.name);
  if (!names.includes('tcp')) throw new GatewayError('LINK_OPTIONS_INVALID', `${what} "${text}" must be a TCP (or TCP /ws) multiaddr`);
  if (needPeer && names.at(-1) !== 'p2p') throw new GatewayError('LINK_OPTIONS_INVALID', `${what} "${text}" must end in /p2p/<peer id>`);
  if (needPeer && (names.includes('ws') || names.includes('wss')) && typeof globalThis.WebSocket !== 'function') {
    // libp2p dials WebSockets with the runtime's WebSocket, which Node.js has from version 22 on.
    throw new GatewayError('LINK_OPTIONS_INVALID', `${what} "${text}" is a WebSockets address, which this Node.js ${process.version} cannot dial (it has no WebSocket; Node.js 22 has): give the peer's TCP address`);
  }
  if (needPeer) {
    const id = addr.getComponents().at(-1)!.value ?? '';
    try {
      peerIdFromString(id);
    } catch (cause) {
      throw new GatewayError('LINK_OPTIONS_INVALID', `${what} "${text}" ends in "${id}", which is not a libp2p peer id`, { cause });
    }
  }
  return addr;
}

/**
 * Why libp2p would not start, in one line: libp2p's own message for addresses it could not
 * listen on carries each error's stack, which is no place for a person to read.
 */
function startFailure(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  const listen = [...text.matchAll(/^\s*(\/\S+): (?:\w*Error: )?(.+)$/gm)].map((m) => `${m[1]}: ${m[2]}`);
  return listen.length > 0 ? `cannot listen on ${listen.join('; ')}` : text.split('\n')[0]!;
}

/**
 * A libp2p link (down until `start()`). Throws GatewayError `LINK_OPTIONS_INVALID` on bad
 * options (a malformed multiaddr, a peer without /p2p/<id>).
 */
export async function createLibp2pLink(options: Libp2pLinkOptions, deps: Libp2pLinkDeps): Promise<Libp2pLink> {
  return new Libp2pLinkImpl(options, deps).init();
}
