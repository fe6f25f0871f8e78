/**
 * The baseline: Meshtastic's managed flooding (firmware 2.x, src/mesh/FloodingRouter.cpp,
 * RadioInterface.cpp, RadioLibInterface.cpp, PacketHistory.cpp, AirTime.cpp), on the same
 * radios, churn and traffic as the citizen strategy.
 *
 * Firmware rules modelled:
 * - A message is sent as packets of a 16-byte header plus at most 233 bytes of Data (228 bytes
 *   of text after the protobuf fields); a longer body goes as several packets and counts as
 *   delivered when every part has arrived (the firmware itself does not split text; this is
 *   the kindest reading for bodies over 228 bytes).
 * - The originator sends with hop_limit 3 (config.lora.hop_limit default) and remembers the id.
 * - Every packet is broadcast and flooded, DMs included (no next-hop routing).
 * - Duplicate suppression: a node remembers (sender, id) of packets it has seen for 10 minutes
 *   (PacketHistory); a packet seen before is dropped, and if the node still has its own
 *   rebroadcast of that packet queued, the rebroadcast is cancelled (Router::cancelSending) —
 *   "cancel on hearing a duplicate".
 * - A new packet is delivered to the node if it is broadcast or addressed to it; it is
 *   rebroadcast once with hop_limit − 1 if hop_limit > 0 and it is not addressed to this node.
 * - Contention windows (RadioInterface): slot = 8.5 symbols + 0.2 + 0.4 + 7 ms; a
 *   rebroadcast waits 2·CWmax·slot + random(0, 2^CW)·slot with CW = map(SNR, −20…10 dB →
 *   CWmin 3…CWmax 8), so weaker receivers, farther away, rebroadcast first (client role);
 *   an original waits random(0, 2^CWmin)·slot (channel utilisation taken as 0).
 * - Listen before talk: when the delay ends and the channel is busy (a frame in range being
 *   received, or the radio sending), the packet waits another contention window.
 * - Duty cycle: the same governor as the real code (half the legal budget, rolling hour, as
 *   Meshtastic's polite duty cycle); a packet that does not fit is dropped, as the firmware
 *   refuses to send (DUTY_CYCLE_LIMIT) instead of queueing.
 * - Transmit queue of 16 packets (MAX_TX_QUEUE); packets beyond are dropped.
 * - A node that powers off loses its queue and its packet history (both live in RAM).
 * - Gateways (MQTT uplink and downlink): a gateway publishes every new packet it hears or
 *   sends to the broker; the other online gateways receive it 50 ms later and treat it as
 *   heard (delivered if addressed to them, then broadcast on LoRa with the hop limit it
 *   arrived with, after an original's contention window).
 *
 * Left out: want_ack and retransmissions (reliable DMs with up to 3 retries, implicit ACKs),
 * next-hop routing of DMs (firmware 2.6), ROUTER/REPEATER roles and their shorter windows,
 * channel-utilisation-dependent windows, hop_start-based rebroadcast refinements, store and
 * forward (not in the default firmware), encryption overhead (AES-CTR adds none).
 */
import { createDutyCycleGovernor, type DutyCycleGovernor } from '../radio/duty-cycle.ts';
import { loraAirtimeMs, symbolTimeMs } from '../radio/lora-airtime.ts';
import type { SimEvent } from './engine.ts';
import type { Transmission } from './channel.ts';
import type { Strategy, StrategyContext } from './strategy.ts';
import type { Message } from './world.ts';

export const MESHTASTIC_HEADER_BYTES = 16;
/** Text bytes that fit one packet beside the Data protobuf fields. */
export const TEXT_BYTES_PER_PACKET = 228;
/** Data protobuf overhead around the text (portnum and payload tags). */
const DATA_OVERHEAD_BYTES = 5;
export const DEFAULT_HOP_LIMIT = 3;
const CW_MIN = 3;
const CW_MAX = 8;
const SNR_MIN = -20;
const SNR_MAX = 10;
const MAX_TX_QUEUE = 16;
const HISTORY_MS = 10 * 60_000;
/** Latency of the internet path between two gateways (via the MQTT broker), ms. */
export const INTERNET_LATENCY_MS = 50;

export interface FloodOptions {
  /** Hops a packet may be relayed (default 3). */
  hopLimit?: number;
}

/** One Meshtastic packet on the air. */
export interface FloodPacket {
  id: number;
  message: number;
  part: number;
  parts: number;
  to: number;
  hopLimit: number;
  /** Hop limit it started with (hop_start), so hops away = hopStart − hopLimit. */
  hopStart: number;
  bytes: number;
}

interface Queued {
  packet: FloodPacket;
  /** SNR it was heard with; null for our own packets. */
  snr: number | null;
  event: SimEvent | null;
}

interface FloodNode {
  seen: Map<number, number>;
  queue: Queued[];
  parts: Map<number, Set<number>>;
  governor: DutyCycleGovernor;
}

/** The managed-flooding baseline. */
export function createFloodStrategy(context: StrategyContext, options: FloodOptions = {}): Strategy & { hopsHeard: number[][] } {
  const { sim, channel, world, recorder, random } = context;
  const hopLimit = options.hopLimit ?? DEFAULT_HOP_LIMIT;
  const preset = world.radio.preset;
  const slotMs = 8.5 * symbolTimeMs(preset) + 0.2 + 0.4 + 7;
  const n = world.scenario.nodes;
  const gateways = new Set(world.scenario.gateways);
  const counters = { queue_drops: 0, duty_cycle_drops: 0, cancelled_rebroadcasts: 0, rebroadcasts: 0 };
  let nextId = 1;
  /** Per node, per message: hops away it was first heard at (for tests). */
  const hopsHeard: number[][] = Array.from({ length: n }, () => []);
  const nodes: FloodNode[] = Array.from({ length: n }, () => ({
    seen: new Map(),
    queue: [],
    parts: new Map(),
    governor: createDutyCycleGovernor({ dutyCycle: world.radio.limits.dutyCycle }, { clock: sim.clock, timer: sim.timer }),
  }));

  const originalDelay = () => random.int(2 ** CW_MIN) * slotMs;
  const weightedDelay = (snr: number) => {
    const clamped = Math.min(SNR_MAX, Math.max(SNR_MIN, snr));
    const cw = Math.round(CW_MIN + ((clamped - SNR_MIN) * (CW_MAX - CW_MIN)) / (SNR_MAX - SNR_MIN));
    return 2 * CW_MAX * slotMs + random.int(2 ** cw) * slotMs;
  };

  function wasSeen(node: FloodNode, id: number): boolean {
    const at = node.seen.get(id);
    return at !== undefined && sim.now - at < HISTORY_MS;
  }

  function remember(node: FloodNode, id: number): void {
    node.seen.set(id, sim.now);
    if (node.seen.size > 4096) for (const [k, at] of node.seen) if (sim.now - at >= HISTORY_MS) node.seen.delete(k);
  }

  function enqueue(i: number, packet: FloodPacket, snr: number | null): void {
    const node = nodes[i]!;
    if (node.queue.length >= MAX_TX_QUEUE) {
      counters.queue_drops++;
      return;
    }
    const q: Queued = { packet, snr, event: null };
    node.queue.push(q);
    q.event = sim.after(snr === null ? originalDelay() : weightedDelay(snr), () => attempt(i, q));
  }

  function attempt(i: number, q: Queued): void {
    const node = nodes[i]!;
    q.event = null;
    if (!channel.online[i]) return;
    if (channel.isBusy(i)) {
      q.event = sim.after(q.snr === null ? originalDelay() : weightedDelay(q.snr), () => attempt(i, q));
      return;
    }
    node.queue.splice(node.queue.indexOf(q), 1);
    const airtime = loraAirtimeMs(preset, q.packet.bytes);
    if (!node.governor.canSend(airtime)) {
      counters.duty_cycle_drops++;
      return;
    }
    node.governor.record(airtime);
    if (q.snr !== null) counters.rebroadcasts++;
    channel.transmit(i, q.packet.bytes, airtime, q.packet);
  }

  /** MQTT: a gateway passes a new packet to every other online gateway. */
  function uplink(from: number, packet: FloodPacket): void {
    if (!gateways.has(from)) return;
    for (const g of gateways) {
      if (g !== from) sim.after(INTERNET_LATENCY_MS, () => downlink(g, packet));
    }
  }

  function downlink(i: number, packet: FloodPacket): void {
    const node = nodes[i]!;
    if (!channel.online[i] || wasSeen(node, packet.id)) return;
    remember(node, packet.id);
    accept(i, packet);
    if (packet.to !== i) enqueue(i, packet, null);
  }

  function accept(i: number, packet: FloodPacket): void {
    const node = nodes[i]!;
    if (packet.to === -1 || packet.to === i) {
      if (hopsHeard[i]![packet.message] === undefined) hopsHeard[i]![packet.message] = packet.hopStart - packet.hopLimit;
      if (packet.parts === 1) recorder.deliver(packet.message, i, sim.now);
      else {
        let got = node.parts.get(packet.message);
        if (!got) node.parts.set(packet.message, (got = new Set()));
        got.add(packet.part);
        if (got.size === packet.parts) {
          node.parts.delete(packet.message);
          recorder.deliver(packet.message, i, sim.now);
        }
      }
    }
  }

  function receive(i: number, tx: Transmission, snr: number): void {
    const packet = tx.payload as FloodPacket;
    const node = nodes[i]!;
    if (wasSeen(node, packet.id)) {
      const at = node.queue.findIndex((q) => q.packet.id === packet.id);
      if (at >= 0) {
        sim.cancel(node.queue[at]!.event ?? undefined);
        node.queue.splice(at, 1);
        counters.cancelled_rebroadcasts++;
      }
      return;
    }
    remember(node, packet.id);
    accept(i, packet);
    uplink(i, packet);
    if (packet.to === i || packet.hopLimit <= 0) return;
    enqueue(i, { ...packet, hopLimit: packet.hopLimit - 1 }, snr);
  }

  for (let i = 0; i < n; i++) channel.attach(i, (tx, _rssi, snr) => receive(i, tx, snr));

  return {
    name: 'flood',
    async: false,
    hopsHeard,
    start() {},
    originate(m: Message) {
      const parts = Math.max(1, Math.ceil(m.bytes / TEXT_BYTES_PER_PACKET));
      for (let part = 0; part < parts; part++) {
        const text = Math.min(TEXT_BYTES_PER_PACKET, m.bytes - part * TEXT_BYTES_PER_PACKET);
        const packet: FloodPacket = {
          id: nextId++,
          message: m.index,
          part,
          parts,
          to: m.to,
          hopLimit,
          hopStart: hopLimit,
          bytes: MESHTASTIC_HEADER_BYTES + DATA_OVERHEAD_BYTES + text,
        };
        remember(nodes[m.from]!, packet.id);
        enqueue(m.from, packet, null);
        uplink(m.from, packet);
      }
    },
    setOnline(i, on) {
      if (on) return;
      const node = nodes[i]!;
      for (const q of node.queue) sim.cancel(q.event ?? undefined);
      node.queue = [];
      node.seen.clear();
      node.parts.clear();
    },
    stop() {},
    detail: () => ({ ...counters }),
  };
}
