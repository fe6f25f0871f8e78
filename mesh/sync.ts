/**
 * Sync: how records move between households, over any `Link` (radio, UDP, libp2p).
 *
 * Per link, a node:
 *  - announces itself with a short signed BEACON, and learns its neighbours from theirs;
 *  - runs a Trickle timer (RFC 6206). When it fires, the node broadcasts a RECONCILE opening:
 *    a summary of every record it holds whose size grows with the expected difference, not
 *    with the store (mesh/reconcile.ts), sized so that most neighbours settle from it alone.
 *    Each neighbour that hears it works out the difference: the one neighbour the opening
 *    names pushes what the opener lacks (one copy, which everyone lacking it hears), and each
 *    asks the opener, with a WANT (after a random moment, and not for what another neighbour
 *    was heard asking), for what it lacks itself. A difference larger than the opening
 *    settles takes round trips, with the named neighbour only; the others open their own
 *    summary soon. A neighbour that finds no
 *    difference counts it as consistent, and k consistent summaries in an interval keep the
 *    node quiet; a difference hurries the next summary;
 *  - keeps repair (summaries, WANTs and the records they bring) to a small share of the
 *    link's capacity (REPAIR_SHARE), smaller still among many neighbours (a receiver hears
 *    the repair of all of them): on a radio, repair that fills the channel makes fresh
 *    records collide, which makes more repair;
 *  - forwards new records eagerly, as gossip: a node with n neighbours that hears a fresh
 *    record rebroadcasts it with probability FORWARDERS / n, once, after a random delay
 *    (weaker receivers first), unless another neighbour is heard sending it first (so in a
 *    clique one rebroadcast serves all, and on a line each hop sends it once); a forward
 *    waiting for the channel is abandoned when a neighbour is heard sending it first;
 *  - pushes records through a bounded queue ordered by priority and, within a priority, by
 *    trust-weighted fair shares per household (mesh/send-queue.ts), so a flood from one
 *    author cannot take the airtime of everyone else.
 *
 * Delay tolerance needs nothing special: records stay in the store until they expire; a
 * neighbour that appears (a beacon, a link coming up) hurries the Trickle timer, and the
 * next reconciliation carries whatever it lacks. Nothing depends on end-to-end paths.
 *
 * The link owns airtime: it holds each frame for its time on air and gates it through the
 * duty-cycle governor. Sync awaits each send, so a slow link simply moves less.
 *
 * Hostile input is dropped with a counted reason (see `LinkSyncStats.dropped`); per-link
 * state (neighbours, sessions, partial messages, queue) is bounded.
 */
import { createHash } from 'node:crypto';
import { createFragmenter, createReassembler, type Fragmenter, type Reassembler } from '../radio/fragmentation.ts';
import type { Timer } from '../radio/duty-cycle.ts';
import type { FrameMeta, Link } from '../radio/link.ts';
import { equalBytes, fromHex, toHex } from './bytes.ts';
import { unixSeconds, type Clock } from './clock.ts';
import { defaultEd25519, type SignatureScheme } from './ed25519.ts';
import { MeshError } from './errors.ts';
import { HeardFilter } from './heard-filter.ts';
import type { IngestResult, MeshNode } from './node.ts';
import { Priority, type Record } from './record.ts';
import { createIdSet, Reconciler, type MutableIdSet } from './reconcile.ts';
import { SendQueue } from './send-queue.ts';
import {
  decodeSyncMessage,
  encodeBeacon,
  encodeReconcile,
  encodeRecordMessage,
  encodeWant,
  EVERYONE,
  MAX_WANT_IDS,
  recordShortId,
  SHORT_ID_BYTES,
  SyncType,
  verifyBeacon,
  type BeaconMessage,
  type ReconcileMessage,
  type SyncMessage,
} from './sync-messages.ts';
import { Trickle } from './trickle.ts';

/**
 * After a new record the next summary comes within this many Imin (eager forwarding carries
 * fresh records; the summary only repairs what was lost), and after a summary showed a
 * difference, within REPAIR_INTERVALS. On a busy radio many summaries differ a little (lost
 * frames); a full Trickle reset on each would fill the channel with summaries.
 */
const HURRY_INTERVALS = 32;
const REPAIR_INTERVALS = 4;
/**
 * Eager forwarding is gossip: a node with n neighbours forwards a fresh record with
 * probability FORWARDERS / n (always, with FORWARDERS or fewer), so about that many of the
 * neighbours that heard one copy send the next, however dense the street. The few nodes it
 * misses are repaired by summaries; every node forwarding would fill a dense channel.
 * Three: four spent 5–9% more airtime per delivery on the simulator's neighbourhoods for as
 * much delivered; two delivered less where the channel is full.
 */
const FORWARDERS = 3;
/** Records younger than this (seconds) are forwarded eagerly unless SyncOptions say otherwise. */
export const DEFAULT_EAGER_WINDOW_S = 120;
/** Records whose carriers (neighbours heard sending them) are remembered. */
const MAX_CARRIER_RECORDS = 4096;
/** A RECONCILE message's bytes before the reconciler's (sync-messages.ts). */
const RECONCILE_HEADER_BYTES = 19;
/** Share of a link's capacity that repair may use, and its burst in full frames. */
const REPAIR_SHARE = 0.005;
const REPAIR_BURST_FRAMES = 4;
/**
 * A receiver hears the repair of every neighbour, so a node with more neighbours than this
 * takes REPAIR_NEIGHBOURS / n of REPAIR_SHARE: the repair heard anywhere stays under about
 * REPAIR_NEIGHBOURS · REPAIR_SHARE (8%) of the channel however dense the street. Without it, a
 * town whose nodes hear 70 neighbours each filled its channel with repair (town-300).
 */
export const REPAIR_NEIGHBOURS = 16;

/** The share of a link's capacity one node's repair may use, when it has `neighbours`. */
export function repairShare(neighbours: number): number {
  return REPAIR_SHARE * Math.min(1, REPAIR_NEIGHBOURS / Math.max(1, neighbours));
}
/** Most syndromes an opening carries (24 · 8 bytes: the opening still fits one LoRa frame). */
const MAX_OPENING_SYNDROMES = 24;

/** Timing of one class of link. */
export interface LinkTiming {
  /** Trickle: shortest and longest interval between summaries, and the redundancy constant. */
  iminMs: number;
  imaxMs: number;
  k: number;
  /** A beacon goes out this often (± 10%), whatever else the node says. */
  beaconIntervalMs: number;
  /** Most random delay before an eager forward or a reply to a WANT (others may answer first). */
  forwardDelayMs: number;
  /** A neighbour not heard for this long is forgotten. */
  neighbourTimeoutMs: number;
}

/**
 * Timing follows the link's speed: T is the time one full frame takes (mtu · 8 / bit rate).
 * A LoRa LongFast radio (~1.1 kbit/s, T ≈ 1.9 s) summarises at most every 19 s and, when all
 * agree, once an hour; a LAN (T ≈ 0.1 ms) every 0.5 s to 30 s. Faster LoRa presets land in
 * between, so the same protocol simply moves more on a faster link.
 */
export function linkTiming(link: Pick<Link, 'mtu' | 'bitRate'>): LinkTiming {
  const frameMs = (link.mtu * 8 * 1000) / Math.max(1, link.bitRate);
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  const imaxMs = Math.round(clamp(1800 * frameMs, 30_000, 3_600_000));
  return {
    iminMs: Math.round(clamp(10 * frameMs, 500, 20_000)),
    imaxMs,
    k: 1,
    beaconIntervalMs: imaxMs,
    forwardDelayMs: Math.round(clamp(10 * frameMs, 30, 20_000)),
    neighbourTimeoutMs: Math.round(2.5 * imaxMs),
  };
}

/** LoRa LongFast's timing (for reference and tests). */
export const SLOW_LINK: LinkTiming = linkTiming({ mtu: 255, bitRate: 1_070 });
/** A LAN's timing. */
export const FAST_LINK: LinkTiming = linkTiming({ mtu: 1200, bitRate: 100_000_000 });

/** Beacons further than this from our clock are refused, seconds (records: MAX_CLOCK_SKEW_S). */
export const DEFAULT_MAX_CLOCK_SKEW_S = 900;

export interface SyncOptions {
  /** Overrides of the timing `linkTiming` derives per link (tests shorten it). */
  timing?: Partial<LinkTiming>;
  /** This node has an internet link (said in its beacons). */
  gateway?: boolean;
  /** Records younger than this are forwarded eagerly; older ones move by reconciliation. Default 120 s. */
  eagerWindowS?: number;
  /** Neighbours remembered per link. Default 256. */
  maxNeighbours?: number;
  /** Reconciliation sessions held per link. Default 16. */
  maxSessions?: number;
  /** Beacons more than this far from our clock are refused. Default 900 s. */
  maxClockSkewS?: number;
}

export interface SyncDeps {
  node: MeshNode;
  /** Milliseconds since the epoch (virtual in the simulator). */
  clock: Clock;
  timer: Timer;
  /** Uniform in [0, 1). Default Math.random (only jitter depends on it). */
  random?: () => number;
  scheme?: SignatureScheme;
}

export interface Neighbour {
  /** Household key id, hex. */
  id: string;
  /** The household's name, when the directory knows it. */
  name: string | null;
  /** A valid beacon was heard from it. */
  verified: boolean;
  gateway: boolean;
  records: number;
  lastHeard: number;
  rssi?: number;
  snr?: number;
}

export interface LinkSyncStats {
  spec: string;
  up: boolean;
  neighbours: number;
  frames_out: number;
  frames_in: number;
  bytes_out: number;
  bytes_in: number;
  airtime_ms: number;
  messages_out: number;
  messages_in: number;
  records_pushed: number;
  /** Of those, by why they were queued. */
  records_pushed_by: { [reason in PushReason]: number };
  /** Pushes abandoned while waiting for the channel: a neighbour was heard sending the record. */
  records_abandoned: number;
  records_received: number;
  queue: number;
  trickle_interval_ms: number;
  summaries_sent: number;
  summaries_suppressed: number;
  /** Messages and frames thrown away, by reason. */
  dropped: { [reason: string]: number };
}

export interface SyncStats {
  links: LinkSyncStats[];
  /** Records queued on all links. */
  queue: number;
}

/** Why a record was queued: our own new record, an eager forward, an answer to a WANT, a difference a summary showed. */
export type PushReason = 'own' | 'forward' | 'want' | 'reconcile';

interface Session {
  number: number;
  reconciler: Reconciler;
  touched: number;
  /** The opener named us (or nobody) to send what it lacks. */
  serves: boolean;
}

interface LinkState {
  link: Link;
  timing: LinkTiming;
  fragmenter: Fragmenter;
  reassembler: Reassembler;
  queue: SendQueue;
  trickle: Trickle;
  /** Records queued for this link lately: one broadcast serves every neighbour asking at once. */
  sentRecently: HeardFilter;
  /** Records asked for lately: every neighbour's summary shows the same gap; one WANT is enough. */
  wantedRecently: HeardFilter;
  /** Records a neighbour was heard asking for lately: the answer is a broadcast we will hear too. */
  othersWanted: HeardFilter;
  /** Records that arrived fresh on this link or that we sent fresh on it (eager forwarding is at work). */
  inFlight: HeardFilter;
  neighbours: Map<string, Neighbour>;
  /** Per neighbour: the newest beacon time seen, and the signatures seen at that time. */
  lastBeaconTime: Map<string, { time: number; signatures: Set<string> }>;
  /** Sessions this node answers (key: peer hex). */
  answering: Map<string, Session>;
  /**
   * The session this node opened last (`openedSession`): one opener answers every neighbour
   * that replies, from the snapshot of the set its opening summarised.
   */
  opener: Reconciler | null;
  openedSession: number;
  forwards: Map<bigint, unknown>;
  /** SNR of the frame that brought a record, while it is being stored (orders forwards). */
  arrivalSnr: Map<bigint, number>;
  /** Records stored since this link's last opening, and the largest difference sessions found lately. */
  newSinceOpening: number;
  recentDifference: number;
  /** Repair's token bucket (bytes) and when it was last refilled. */
  repairTokens: number;
  repairRefilledAt: number;
  lastBeaconAt: number;
  beaconTimer: unknown;
  beaconTick: unknown;
  pumping: boolean;
  /** The record the pump is sending (waiting for the channel, or on air), and whether a neighbour was heard sending it since. */
  onAir: bigint | null;
  onAirHeard: boolean;
  unsubscribe: (() => void)[];
  counters: { messagesOut: number; messagesIn: number; pushed: number; abandoned: number; received: number; summaries: number };
  pushedBy: { [reason in PushReason]: number };
  dropped: Map<string, number>;
}

export class Sync {
  readonly #node: MeshNode;
  readonly #clock: Clock;
  readonly #timer: Timer;
  readonly #random: () => number;
  readonly #scheme: SignatureScheme;
  readonly #options: Required<Omit<SyncOptions, 'timing'>>;
  readonly #timing: Partial<LinkTiming>;
  readonly #links = new Map<Link, LinkState>();
  /** Short ids of every record held, for reconciliation, and the full id behind each. */
  readonly #ids: MutableIdSet = createIdSet();
  readonly #fullIds = new Map<bigint, Uint8Array>();
  /** Per record (short id), the neighbours heard sending it: they hold it. Bounded, oldest out. */
  readonly #carriers = new Map<bigint, Set<string>>();
  /** Households whose signed beacons were refused for their time: how far off, and until when (ms) that stands. */
  readonly #clockReports = new Map<string, { offsetS: number; until: number }>();
  #running = false;
  #onRecord = (record: Record, source: unknown): void => this.#recordStored(record, source);

  constructor(deps: SyncDeps, options: SyncOptions = {}) {
    this.#node = deps.node;
    this.#clock = deps.clock;
    this.#timer = deps.timer;
    this.#random = deps.random ?? Math.random;
    this.#scheme = deps.scheme ?? defaultEd25519;
    this.#timing = options.timing ?? {};
    this.#options = {
      gateway: options.gateway ?? false,
      eagerWindowS: options.eagerWindowS ?? DEFAULT_EAGER_WINDOW_S,
      maxNeighbours: options.maxNeighbours ?? 256,
      maxSessions: options.maxSessions ?? 16,
      maxClockSkewS: options.maxClockSkewS ?? DEFAULT_MAX_CLOCK_SKEW_S,
    };
  }

  /** Load the ids of every stored record and begin syncing on the links added so far. */
  async start(): Promise<void> {
    if (this.#running) return;
    await this.refresh();
    this.#running = true;
    this.#node.on('record', this.#onRecord);
    for (const state of this.#links.values()) if (state.link.up) this.#linkUp(state);
  }

  /** Rebuild the id set from the store (after records expired). */
  async refresh(): Promise<void> {
    const fresh = new Map<bigint, Uint8Array>();
    for await (const id of this.#node.store.ids()) fresh.set(recordShortId(id), id);
    for (const short of [...this.#fullIds.keys()]) {
      if (!fresh.has(short)) {
        this.#fullIds.delete(short);
        this.#ids.delete(short);
      }
    }
    for (const [short, id] of fresh) {
      if (!this.#fullIds.has(short)) {
        this.#fullIds.set(short, id);
        this.#ids.add(short);
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#node.off('record', this.#onRecord);
    for (const state of this.#links.values()) this.#linkDown(state);
  }

  /** Sync over `link` too. The link's own start/stop stays with the caller. */
  addLink(link: Link): void {
    if (this.#links.has(link)) return;
    const state: LinkState = {
      link,
      ...this.#timed(link, () => this.#summarise(state)),
      fragmenter: createFragmenter({ mtu: link.mtu }, { random: (n) => this.#node.random(n) }),
      reassembler: createReassembler({}, { clock: this.#clock }),
      queue: new SendQueue({ weightOf: (household) => this.#node.trustOf(fromHex(household)) }),
      neighbours: new Map(),
      lastBeaconTime: new Map(),
      answering: new Map(),
      opener: null,
      openedSession: Math.floor(this.#random() * 256),
      forwards: new Map(),
      arrivalSnr: new Map(),
      newSinceOpening: 0,
      recentDifference: 0,
      repairTokens: 4 * link.mtu,
      repairRefilledAt: this.#clock.now(),
      lastBeaconAt: -Infinity,
      beaconTimer: null,
      beaconTick: null,
      pumping: false,
      onAir: null,
      onAirHeard: false,
      unsubscribe: [],
      counters: { messagesOut: 0, messagesIn: 0, pushed: 0, abandoned: 0, received: 0, summaries: 0 },
      pushedBy: { own: 0, forward: 0, want: 0, reconcile: 0 },
      dropped: new Map(),
    };
    state.unsubscribe.push(
      link.on('frame', (frame, meta) => this.#frame(state, frame, meta)),
      link.on('up', () => this.#running && this.#linkUp(state)),
      link.on('down', () => this.#linkDown(state)),
    );
    this.#links.set(link, state);
    if (this.#running && link.up) this.#linkUp(state);
  }

  removeLink(link: Link): void {
    const state = this.#links.get(link);
    if (!state) return;
    this.#linkDown(state);
    for (const off of state.unsubscribe) off();
    this.#links.delete(link);
  }

  /**
   * How many neighbours (over all links) were heard sending the record `id`, so hold it: what
   * "carried by N neighbours" of a sent mail rests on. A lower bound: a neighbour that took
   * it quietly is not counted.
   */
  carriers(id: Uint8Array): number {
    return this.#carriers.get(recordShortId(id))?.size ?? 0;
  }

  /**
   * Households heard lately (as long as a neighbour is remembered on the link that carried
   * the beacon: 2.5 h on LongFast) whose signed beacons were refused because their time is
   * more than `maxClockSkewS` from ours, and the median of how far (seconds, positive: theirs
   * is ahead). Their records are refused too (from the future, or expired), so when several
   * agree, it is most likely this node's clock that is wrong: a Raspberry Pi without a
   * real-time clock or internet keeps the time it had when it lost power. Null when none.
   */
  clockDisagreement(): { households: number; offsetS: number } | null {
    const now = this.#clock.now();
    const offsets: number[] = [];
    for (const [peer, report] of this.#clockReports) {
      if (report.until < now) this.#clockReports.delete(peer);
      else offsets.push(report.offsetS);
    }
    if (offsets.length === 0) return null;
    offsets.sort((a, b) => a - b);
    const mid = offsets.length >> 1;
    const offsetS = offsets.length % 2 === 1 ? offsets[mid]! : Math.round((offsets[mid - 1]! + offsets[mid]!) / 2);
    return { households: offsets.length, offsetS };
  }

  #reportClock(peer: string, offsetS: number, keepMs: number): void {
    this.#clockReports.delete(peer);
    this.#clockReports.set(peer, { offsetS, until: this.#clock.now() + keepMs });
    // Bounded like the neighbour tables: the oldest report goes first.
    if (this.#clockReports.size > this.#options.maxNeighbours) this.#clockReports.delete(this.#clockReports.keys().next().value!);
  }

  /** Neighbours heard on a link (verified by beacon or not), freshest first. */
  neighbours(link: Link): Neighbour[] {
    const state = this.#links.get(link);
    if (!state) return [];
    this.#forgetOldNeighbours(state);
    // A neighbour heard before its household's directory entry arrived is named as soon as it is known.
    for (const n of state.neighbours.values()) n.name ??= this.#node.directory.household(fromHex(n.id))?.name ?? null;
    return [...state.neighbours.values()].sort((a, b) => b.lastHeard - a.lastHeard);
  }

  stats(): SyncStats {
    const links = [...this.#links.values()].map((s) => this.#linkStats(s));
    return { links, queue: links.reduce((n, l) => n + l.queue, 0) };
  }

  #linkStats(state: LinkState): LinkSyncStats {
    const ls = state.link.stats();
    const reassembly = state.reassembler.stats();
    const dropped: { [reason: string]: number } = Object.fromEntries(state.dropped);
    for (const [reason, n] of Object.entries(reassembly.dropped)) if (n > 0) dropped[`fragment-${reason}`] = n;
    if (state.queue.dropped > 0) dropped['queue-full'] = state.queue.dropped;
    this.#forgetOldNeighbours(state);
    return {
      spec: state.link.spec,
      up: state.link.up,
      neighbours: [...state.neighbours.values()].filter((n) => n.verified).length,
      frames_out: ls.framesOut,
      frames_in: ls.framesIn,
      bytes_out: ls.bytesOut,
      bytes_in: ls.bytesIn,
      airtime_ms: Math.round(ls.airtimeMs * 1000) / 1000,
      messages_out: state.counters.messagesOut,
      messages_in: state.counters.messagesIn,
      records_pushed: state.counters.pushed,
      records_pushed_by: { ...state.pushedBy },
      records_abandoned: state.counters.abandoned,
      records_received: state.counters.received,
      queue: state.queue.recordCount,
      trickle_interval_ms: state.trickle.intervalMs,
      summaries_sent: state.counters.summaries,
      summaries_suppressed: state.trickle.suppressions,
      dropped,
    };
  }

  // ---- link life ----

  /** The link's timing (from its speed, then the options) and the parts built on it. */
  #timed(link: Link, fire: () => void): Pick<LinkState, 'timing' | 'trickle' | 'sentRecently' | 'wantedRecently' | 'othersWanted' | 'inFlight'> {
    const timing = { ...linkTiming(link), ...this.#timing };
    return {
      timing,
      trickle: new Trickle(timing, { timer: this.#timer, random: this.#random }, fire),
      sentRecently: new HeardFilter({ maxAgeMs: 2 * timing.iminMs }, this.#clock),
      wantedRecently: new HeardFilter({ maxAgeMs: REPAIR_INTERVALS * timing.iminMs }, this.#clock),
      othersWanted: new HeardFilter({ maxAgeMs: REPAIR_INTERVALS * timing.iminMs }, this.#clock),
      inFlight: new HeardFilter({ maxAgeMs: this.#options.eagerWindowS * 1000 }, this.#clock),
    };
  }

  #linkUp(state: LinkState): void {
    // A radio tells its real preset (so its speed) only once connected: time the link now.
    const timing = { ...linkTiming(state.link), ...this.#timing };
    if ((Object.keys(timing) as (keyof LinkTiming)[]).some((k) => timing[k] !== state.timing[k])) {
      state.trickle.stop();
      Object.assign(state, this.#timed(state.link, () => this.#summarise(state)));
    }
    // Back (or new): whatever we sent before may not have been heard; reconcile at Imin.
    state.sentRecently.clear();
    state.wantedRecently.clear();
    state.othersWanted.clear();
    state.trickle.start();
    // Introduce ourselves within Imin, not at once: after a power cut every radio comes back together.
    state.lastBeaconAt = -Infinity;
    if (state.beaconTimer !== null) this.#timer.clearTimeout(state.beaconTimer);
    state.beaconTimer = this.#timer.setTimeout(() => {
      state.beaconTimer = null;
      if (state.link.up) this.#sendBeacon(state);
    }, this.#random() * state.timing.iminMs);
    this.#scheduleBeacon(state);
  }

  /**
   * Beacons keep neighbours known on their own timer, every beaconIntervalMs ± 10%: Trickle
   * suppression may keep a node's summaries quiet for hours, its presence should not be.
   */
  #scheduleBeacon(state: LinkState): void {
    const every = state.timing.beaconIntervalMs;
    state.beaconTick = this.#timer.setTimeout(() => {
      state.beaconTick = null;
      if (!state.link.up) return;
      // (A last beacon "in the future" means the clock was set back: send, or none goes out until it catches up.)
      const since = this.#clock.now() - state.lastBeaconAt;
      if (since >= every / 2 || since < 0) this.#sendBeacon(state);
      this.#scheduleBeacon(state);
    }, every * (0.9 + 0.2 * this.#random()));
  }

  #linkDown(state: LinkState): void {
    state.trickle.stop();
    if (state.beaconTick !== null) this.#timer.clearTimeout(state.beaconTick);
    state.beaconTick = null;
    if (state.beaconTimer !== null) this.#timer.clearTimeout(state.beaconTimer);
    state.beaconTimer = null;
    for (const handle of state.forwards.values()) this.#timer.clearTimeout(handle);
    state.forwards.clear();
    state.answering.clear();
    state.opener = null;
  }

  // ---- sending ----

  #send(state: LinkState, message: Uint8Array): void {
    state.queue.pushControl(message);
    this.#pump(state);
  }

  #pump(state: LinkState): void {
    if (state.pumping || !state.link.up) return;
    state.pumping = true;
    void (async () => {
      try {
        for (let next = state.queue.next(); next; next = state.queue.next()) {
          if (!state.link.up) break;
          // A record waiting for the channel is abandoned if a neighbour is heard sending it
          // meanwhile (most often another forwarder whose timer fired first).
          state.onAir = next.shortId ?? null;
          state.onAirHeard = false;
          let abandoned = false;
          const beforeAir = next.shortId === undefined ? undefined : { beforeAir: () => !(abandoned = state.onAirHeard) };
          for (const [i, frame] of state.fragmenter.split(next.message).entries()) {
            await state.link.send(frame, i === 0 ? beforeAir : undefined);
            if (abandoned) break;
          }
          state.onAir = null;
          if (abandoned) state.counters.abandoned++;
          else state.counters.messagesOut++;
        }
      } catch (err) {
        this.#drop(state, err instanceof Error && 'code' in err ? `send-${String(err.code).toLowerCase()}` : 'send-failed');
      } finally {
        state.pumping = false;
      }
      // A send failure or a push during the last await may have left messages behind.
      if (state.link.up && state.queue.length > 0) this.#pump(state);
    })();
  }

  #sendBeacon(state: LinkState): void {
    state.lastBeaconAt = this.#clock.now();
    let ask: Neighbour | undefined;
    for (const n of state.neighbours.values()) if (!n.verified && (!ask || n.lastHeard > ask.lastHeard)) ask = n;
    this.#send(state, encodeBeacon(this.#node.household, { time: unixSeconds(this.#clock), records: this.#ids.size, gateway: this.#options.gateway, ask: ask ? fromHex(ask.id) : null }));
  }

  /**
   * Beacon now, or once an eighth of the beacon interval (at least Imin) has passed since the
   * last one: beacons are the costliest control message, and on a crowded channel every lost
   * one makes a neighbour ask again.
   */
  #beaconSoon(state: LinkState): void {
    const spacing = Math.max(state.timing.iminMs, state.timing.beaconIntervalMs / 8);
    const wait = state.lastBeaconAt + spacing - this.#clock.now();
    if (wait <= 0) return this.#sendBeacon(state);
    if (state.beaconTimer !== null) return;
    state.beaconTimer = this.#timer.setTimeout(() => {
      state.beaconTimer = null;
      if (state.link.up) this.#sendBeacon(state);
    }, wait);
  }

  /** The Trickle timer fired: open a reconciliation with every neighbour. */
  #summarise(state: LinkState): void {
    if (!state.link.up) return;
    if (!this.#hasNeighbours(state)) return; // nobody to reconcile with; the next beacon heard resets the timer
    if (state.queue.recordCount > 0 || !this.#repairAllowed(state, state.link.mtu)) {
      // Records still wait for the air, or repairs used their share of it: a summary now would
      // only find more work. Soon again.
      state.trickle.hurry(REPAIR_INTERVALS * state.timing.iminMs);
      return;
    }
    state.openedSession = (state.openedSession + 1) & 0xff;
    state.opener = this.#newReconciler(state);
    state.counters.summaries++;
    const syndromes = this.#openingSize(state);
    state.newSinceOpening = 0;
    state.recentDifference = Math.floor(state.recentDifference / 2);
    const server = this.#chooseServer(state);
    for (const body of state.opener.open(syndromes)) {
      this.#spendRepair(state, body.length + RECONCILE_HEADER_BYTES);
      this.#send(state, encodeReconcile(this.#node.household.id, server, state.openedSession, true, body, true));
    }
  }

  /**
   * Repair (summaries, WANTs and the records they bring) may use `repairShare` of the link's
   * capacity, as a token bucket of bytes holding at most REPAIR_BURST_FRAMES frames. Beyond
   * that the channel fills: fresh records collide, go missing, and need more repair.
   */
  #refillRepair(state: LinkState): void {
    const now = this.#clock.now();
    const perMs = (repairShare(state.neighbours.size) * state.link.bitRate) / 8 / 1000;
    state.repairTokens = Math.min(REPAIR_BURST_FRAMES * state.link.mtu, state.repairTokens + (now - state.repairRefilledAt) * perMs);
    state.repairRefilledAt = now;
  }

  #repairAllowed(state: LinkState, bytes: number): boolean {
    this.#refillRepair(state);
    return state.repairTokens >= Math.min(bytes, REPAIR_BURST_FRAMES * state.link.mtu);
  }

  /** Spend on repair; the debt is bounded so that one big catch-up delays summaries by minutes, not hours. */
  #spendRepair(state: LinkState, bytes: number): void {
    this.#refillRepair(state);
    state.repairTokens = Math.max(-REPAIR_BURST_FRAMES * state.link.mtu, state.repairTokens - bytes);
  }

  /**
   * The neighbour an opening names to send what we lack: a verified one at random, so that
   * over a few openings every neighbour's records reach us; none known → whoever holds it.
   * (Every neighbour that holds a missing record pushing it would send one copy per hidden
   * neighbour of the opener: on a busy radio most of the air.)
   */
  #chooseServer(state: LinkState): Uint8Array {
    const verified = [...state.neighbours.values()].filter((n) => n.verified);
    if (verified.length === 0) return EVERYONE;
    return fromHex(verified[Math.floor(this.#random() * verified.length)]!.id);
  }

  /**
   * Syndromes in an opening: enough for the difference neighbours likely have — what we
   * stored since our last opening plus what recent sessions on this link found — so that
   * most neighbours settle from the one broadcast opening, without a round trip each.
   * Each syndrome costs 8 bytes; a round trip costs two messages' headers and airtime.
   */
  #openingSize(state: LinkState): number {
    return Math.max(1, Math.min(MAX_OPENING_SYNDROMES, Math.ceil(1.25 * (state.newSinceOpening + state.recentDifference))));
  }

  #newReconciler(state: LinkState): Reconciler {
    // What fits in one frame after the fragment header (1) and the RECONCILE header.
    const maxMessageBytes = Math.min(state.link.mtu, 1200) - 1 - RECONCILE_HEADER_BYTES;
    return new Reconciler(this.#ids, { maxMessageBytes });
  }

  /** Queue a record for `state`'s link, unless it is queued or went out moments ago. */
  async #pushRecord(state: LinkState, short: bigint, reason: PushReason): Promise<void> {
    if (state.sentRecently.has(short) || state.queue.has(short)) return;
    const id = this.#fullIds.get(short);
    if (!id) return;
    const record = await this.#node.store.get(id);
    if (!record || state.sentRecently.has(short) || state.queue.has(short)) return;
    // A record moving by eager forwarding on this link that a summary shows missing is most
    // likely on its way: let forwarding finish before a repair adds another copy.
    if (reason === 'reconcile' && state.inFlight.has(short)) return;
    const household = this.#node.directory.householdOfAuthor(record.author);
    const queued = state.queue.pushRecord({
      shortId: short,
      message: encodeRecordMessage(this.#node.household.id, record.bytes),
      priority: record.priority,
      household: household ? toHex(household.id) : toHex(record.author),
      repair: reason === 'want' || reason === 'reconcile',
    });
    if (queued) {
      if (reason === 'reconcile' || reason === 'want') this.#spendRepair(state, record.bytes.length);
      state.sentRecently.add(short);
      state.counters.pushed++;
      state.pushedBy[reason]++;
      this.#pump(state);
    }
  }

  /**
   * Push after a random delay in [0, maxMs), cancelled if a neighbour is heard sending it.
   * With `snr` (how well we heard the copy that brought it), weaker receivers go first, as in
   * Meshtastic's managed flooding: they are likely farther away, so their copy reaches more
   * new neighbours, and it quiets the nearer ones.
   */
  #pushLater(state: LinkState, short: bigint, reason: PushReason, maxMs: number, snr?: number): void {
    if (state.forwards.has(short) || state.queue.has(short) || state.sentRecently.has(short)) return;
    if (state.forwards.size >= 4096) return; // reconciliation will carry the rest
    const strength = snr === undefined ? this.#random() : Math.min(1, Math.max(0, (snr + 20) / 30));
    const delay = maxMs * (0.6 * strength + 0.4 * this.#random());
    const handle = this.#timer.setTimeout(() => {
      state.forwards.delete(short);
      void this.#pushRecord(state, short, reason);
    }, delay);
    state.forwards.set(short, handle);
  }

  // ---- receiving ----

  #frame(state: LinkState, frame: Uint8Array, meta: FrameMeta): void {
    const bytes = state.reassembler.receive(meta.from ?? 'unknown', frame);
    if (!bytes) return;
    let message: SyncMessage;
    try {
      message = decodeSyncMessage(bytes);
    } catch (err) {
      this.#drop(state, err instanceof MeshError ? err.code.toLowerCase().replaceAll('_', '-') : 'sync-malformed');
      return;
    }
    if (equalBytes(message.sender, this.#node.household.id)) {
      this.#drop(state, 'own-echo');
      return;
    }
    state.counters.messagesIn++;
    void this.#handle(state, message, meta).catch((err: unknown) => {
      this.#drop(state, err instanceof MeshError ? err.code.toLowerCase().replaceAll('_', '-') : 'internal');
    });
  }

  async #handle(state: LinkState, message: SyncMessage, meta: FrameMeta): Promise<void> {
    switch (message.type) {
      case SyncType.Beacon:
        return this.#beacon(state, message, meta);
      case SyncType.Reconcile:
        this.#heardFrom(state, toHex(message.sender), meta);
        return this.#reconcile(state, message);
      case SyncType.Want:
        this.#heardFrom(state, toHex(message.sender), meta);
        // Its answer is a broadcast: whoever lacks the same records need not ask too.
        for (const short of message.ids) state.othersWanted.add(short);
        // Only the neighbour asked answers (its broadcast serves everyone who lacks the same).
        if (!equalBytes(message.target, this.#node.household.id) && !equalBytes(message.target, EVERYONE)) return;
        for (const short of message.ids) if (this.#fullIds.has(short)) this.#pushLater(state, short, 'want', state.timing.forwardDelayMs / 2);
        return;
      case SyncType.Record:
        this.#heardFrom(state, toHex(message.sender), meta);
        return this.#record(state, message.record, meta, toHex(message.sender));
    }
  }

  #beacon(state: LinkState, beacon: BeaconMessage, meta: FrameMeta): void {
    const peer = toHex(beacon.sender);
    const now = unixSeconds(this.#clock);
    if (Math.abs(beacon.time - now) > this.#options.maxClockSkewS) {
      // Refused; but a genuine beacon this far off says one of the two clocks is wrong.
      if (verifyBeacon(beacon, this.#scheme)) this.#reportClock(peer, beacon.time - now, state.timing.neighbourTimeoutMs);
      return this.#drop(state, 'beacon-clock');
    }
    // Replays: an older beacon, or the very same one again (two in one second differ in content).
    const last = state.lastBeaconTime.get(peer);
    const signature = toHex(beacon.signature);
    if (last && (beacon.time < last.time || (beacon.time === last.time && last.signatures.has(signature)))) {
      return this.#drop(state, 'beacon-replayed');
    }
    if (!verifyBeacon(beacon, this.#scheme)) return this.#drop(state, 'beacon-forged');
    this.#clockReports.delete(peer);
    if (last?.time === beacon.time) last.signatures.add(signature);
    else state.lastBeaconTime.set(peer, { time: beacon.time, signatures: new Set([signature]) });
    if (state.lastBeaconTime.size > this.#options.maxNeighbours * 2) {
      state.lastBeaconTime.delete(state.lastBeaconTime.keys().next().value!);
    }
    const known = state.neighbours.get(peer);
    const neighbour = this.#heardFrom(state, peer, meta);
    neighbour.verified = true;
    neighbour.gateway = beacon.gateway;
    neighbour.records = beacon.records;
    if (!known?.verified || (beacon.ask && equalBytes(beacon.ask, this.#node.household.id))) {
      // A new neighbour, or one that cannot verify us yet: introduce ourselves and reconcile
      // soon (not at once: on a crowded channel lost beacons make "new" neighbours all the time).
      this.#beaconSoon(state);
    }
    // It holds records we lack: reconcile soon. (One holding fewer hurries itself on our beacon.)
    if (beacon.records > this.#ids.size) state.trickle.hurry(REPAIR_INTERVALS * state.timing.iminMs);
  }

  #heardFrom(state: LinkState, peer: string, meta: FrameMeta): Neighbour {
    let neighbour = state.neighbours.get(peer);
    if (!neighbour) {
      if (state.neighbours.size >= this.#options.maxNeighbours) this.#forgetOldNeighbours(state, true);
      neighbour = { id: peer, name: null, verified: false, gateway: false, records: 0, lastHeard: 0 };
      state.neighbours.set(peer, neighbour);
      // Heard, but not by beacon (we missed it): our next beacon asks it for one.
    }
    neighbour.lastHeard = meta.receivedAt;
    if (meta.rssi !== undefined) neighbour.rssi = meta.rssi;
    if (meta.snr !== undefined) neighbour.snr = meta.snr;
    neighbour.name ??= this.#node.directory.household(fromHex(peer))?.name ?? null;
    return neighbour;
  }

  #forgetOldNeighbours(state: LinkState, evictOne = false): void {
    const cutoff = this.#clock.now() - state.timing.neighbourTimeoutMs;
    let oldest: Neighbour | undefined;
    for (const n of state.neighbours.values()) {
      if (n.lastHeard < cutoff) state.neighbours.delete(n.id);
      else if (!oldest || n.lastHeard < oldest.lastHeard) oldest = n;
    }
    if (evictOne && oldest && state.neighbours.size >= this.#options.maxNeighbours) state.neighbours.delete(oldest.id);
  }

  #hasNeighbours(state: LinkState): boolean {
    this.#forgetOldNeighbours(state);
    return state.neighbours.size > 0;
  }

  async #reconcile(state: LinkState, message: ReconcileMessage): Promise<void> {
    const peer = toHex(message.sender);
    const opening = message.opening;
    const forUs = equalBytes(message.target, this.#node.household.id);
    if (!opening && !forUs) return; // between two others
    // From the peer as initiator: a session we answer. From the peer as responder: ours.
    const answering = message.fromInitiator;
    let reconciler: Reconciler;
    let serves = false;
    if (answering) {
      let session = state.answering.get(peer);
      if (!session || session.number !== message.session) {
        if (!opening) return this.#drop(state, 'reconcile-stale');
        session = { number: message.session, reconciler: this.#newReconciler(state), touched: 0, serves: forUs || equalBytes(message.target, EVERYONE) };
        this.#keepSession(state.answering, peer, session);
      }
      session.touched = this.#clock.now();
      reconciler = session.reconciler;
      serves = session.serves;
    } else {
      if (opening || message.session !== state.openedSession || !state.opener) return this.#drop(state, 'reconcile-stale');
      reconciler = state.opener;
    }
    let result: ReturnType<Reconciler['receive']>;
    try {
      result = reconciler.receive(message.body);
    } catch (err) {
      if (answering) state.answering.delete(peer);
      throw err;
    }
    // A finished session's last word (DONE) tells the opener nothing it needs: save the airtime.
    // A difference too large for the opening takes round trips: only the neighbour the opening
    // named goes on (one session per opening, however many neighbours heard it); the others
    // open their own summary soon, which names one of them in turn.
    const goOn = !answering || serves;
    if (!result.done && goOn) {
      for (const reply of result.replies) {
        this.#send(state, encodeReconcile(this.#node.household.id, message.sender, message.session, !answering, reply));
      }
    }
    const different = result.theyLack.length > 0 || result.weLack.length > 0;
    // The opener named one neighbour to send what it lacks: one copy, heard by everyone lacking it.
    if (serves) for (const short of result.theyLack) this.#pushLater(state, short, 'reconcile', state.timing.forwardDelayMs / 2);
    this.#want(state, result.weLack, message.sender);
    state.recentDifference = Math.max(state.recentDifference, result.theyLack.length + result.weLack.length);
    // A responder whose session is not settled knows there is a difference, found or not. (An
    // opener answering a REQUEST learns nothing new: hurrying it would replace the open session.)
    if (different || (answering && !result.done)) state.trickle.hurry(REPAIR_INTERVALS * state.timing.iminMs);
    else if (opening) state.trickle.consistent();
    if (answering && (result.done || !goOn)) state.answering.delete(peer);
  }

  #keepSession(sessions: Map<string, Session>, peer: string, session: Session): void {
    sessions.delete(peer);
    if (sessions.size >= this.#options.maxSessions) {
      let oldest: string | undefined;
      let when = Infinity;
      for (const [key, s] of sessions) if (s.touched < when) [oldest, when] = [key, s.touched];
      if (oldest !== undefined) sessions.delete(oldest);
    }
    sessions.set(peer, session);
  }

  /**
   * Ask `from` for the records we lack, after a random moment: every neighbour that heard the
   * same opening finds the same gap at the same instant, and one WANT (whose answer all of
   * them hear) serves the rest, who drop what a neighbour asked for meanwhile.
   */
  #want(state: LinkState, ids: readonly bigint[], from: Uint8Array): void {
    const missing = ids.filter((id) => !this.#fullIds.has(id) && !state.wantedRecently.has(id) && !state.othersWanted.has(id));
    if (missing.length === 0) return;
    for (const id of missing) state.wantedRecently.add(id);
    this.#timer.setTimeout(() => {
      if (!state.link.up) return;
      const still = missing.filter((id) => !this.#fullIds.has(id) && !state.othersWanted.has(id));
      // One frame: fragment header (1), WANT header (sender, target, count: 17).
      const perMessage = Math.max(1, Math.min(MAX_WANT_IDS, Math.floor((Math.min(state.link.mtu, 255) - 1 - 17 - 1) / SHORT_ID_BYTES)));
      for (let i = 0; i < still.length; i += perMessage) {
        const want = encodeWant(this.#node.household.id, from, still.slice(i, i + perMessage));
        this.#spendRepair(state, want.length);
        this.#send(state, want);
      }
    }, (this.#random() * state.timing.forwardDelayMs) / 2);
  }

  async #record(state: LinkState, bytes: Uint8Array, meta: FrameMeta, sender: string): Promise<void> {
    state.counters.received++;
    const fullId = createHash('sha256').update(bytes).digest();
    const short = recordShortId(fullId);
    const held = this.#fullIds.get(short);
    if (held !== undefined && equalBytes(held, fullId)) {
      // The very bytes of a record we hold (its id is their hash): nothing to verify or store.
      // On a shared channel most records a node hears are such copies.
      this.#heardCopy(state, short, sender, 'duplicate');
      return;
    }
    const withSnr = meta.snr !== undefined && state.arrivalSnr.size < 1024;
    if (withSnr) state.arrivalSnr.set(short, meta.snr!);
    const [result] = await this.#node.ingest([bytes], state.link).finally(() => withSnr && state.arrivalSnr.delete(short));
    if (!result) return;
    if (result.id !== null) this.#heardCopy(state, short, sender, result.status);
    if (result.status === 'rejected') this.#drop(state, `record-${(result.code ?? 'rejected').toLowerCase().replaceAll('_', '-')}`);
  }

  /** What a record heard from `sender` tells us, once we know what became of it. */
  #heardCopy(state: LinkState, short: bigint, sender: string, status: IngestResult['status']): void {
    if (status === 'stored' || status === 'duplicate') this.#carriedBy(short, sender);
    if (status !== 'stored') {
      // A copy of something we hold, sent after we decided to send it too: its sender served
      // the neighbours we meant to serve (Trickle's suppression), so we stay quiet.
      state.queue.remove(short);
      if (state.onAir === short) state.onAirHeard = true;
      const pending = state.forwards.get(short);
      if (pending !== undefined) {
        this.#timer.clearTimeout(pending);
        state.forwards.delete(short);
      }
    }
    if (status !== 'stored' && status !== 'pending' && status !== 'rejected') this.#drop(state, `record-${status}`);
  }

  /** A record was stored: remember its id, forward it if fresh, and let neighbours know. */
  #recordStored(record: Record, source: unknown): void {
    const short = recordShortId(record.id);
    if (!this.#fullIds.has(short)) {
      this.#fullIds.set(short, record.id);
      this.#ids.add(short);
    }
    const fresh = record.time >= unixSeconds(this.#clock) - this.#options.eagerWindowS;
    for (const state of this.#links.values()) {
      if (!state.link.up) continue;
      // Eager forwarding carries it now; a summary within a few Imin repairs what was lost.
      state.trickle.hurry(HURRY_INTERVALS * state.timing.iminMs);
      state.newSinceOpening++;
      if (!fresh || record.priority === Priority.Bulk || !this.#hasNeighbours(state)) continue;
      state.inFlight.add(short);
      if (source === undefined) void this.#pushRecord(state, short, 'own'); // ours: nobody has it yet
      else if (this.#random() < FORWARDERS / Math.max(1, state.neighbours.size)) this.#pushLater(state, short, 'forward', state.timing.forwardDelayMs, state.link === source ? state.arrivalSnr.get(short) : undefined);
    }
  }

  #carriedBy(short: bigint, neighbour: string): void {
    let set = this.#carriers.get(short);
    if (!set) {
      if (this.#carriers.size >= MAX_CARRIER_RECORDS) this.#carriers.delete(this.#carriers.keys().next().value!);
      set = new Set();
      this.#carriers.set(short, set);
    }
    if (set.size < 64) set.add(neighbour);
  }

  #drop(state: LinkState, reason: string): void {
    state.dropped.set(reason, (state.dropped.get(reason) ?? 0) + 1);
  }
}
