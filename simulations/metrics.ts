/**
 * What a run measured, as SPEC §5 `metrics.json` writes it: deliveries and their latency,
 * the channel's frames, bytes and airtime, duty cycle per node and collisions.
 *
 * Duty cycle is measured independently of the governor that enforces it: from the log of
 * every transmission, `max_duty_cycle` is the highest share of any rolling hour (any start
 * instant, not calendar hours) one node spent transmitting, and `duty_cycle_violations`
 * counts transmissions at whose end the hour before held more than the region's legal duty
 * cycle.
 */
import { DEFAULT_SHARE_OF_LEGAL } from '../radio/duty-cycle.ts';
import type { Channel } from './channel.ts';
import { expectedPairs, type World } from './world.ts';

export const HOUR_MS = 3_600_000;

/** First delivery times of every (message, node) pair that should be delivered. */
export class DeliveryRecorder {
  /** latency[message][node]: seconds from writing to storing, NaN until delivered. DMs keep one slot. */
  readonly #latency: Float32Array[];
  delivered = 0;

  constructor(readonly world: World) {
    const n = world.scenario.nodes;
    // A chat or blog message is expected at every node (SPEC §5), its author's too, which
    // holds it from the moment it is written.
    this.#latency = world.messages.map((m) => {
      const row = new Float32Array(m.to >= 0 ? 1 : n).fill(NaN);
      if (m.to < 0) row[m.from] = 0;
      return row;
    });
    this.delivered = world.messages.reduce((k, m) => k + (m.to < 0 ? 1 : 0), 0);
  }

  /** Record that `message` reached `node` at virtual time `nowMs`; repeats and unexpected pairs are ignored. */
  deliver(message: number, node: number, nowMs: number): void {
    const m = this.world.messages[message];
    if (!m || node === m.from) return;
    let slot: number;
    if (m.to >= 0) {
      if (node !== m.to) return;
      slot = 0;
    } else slot = node;
    const row = this.#latency[message]!;
    if (!Number.isNaN(row[slot]!)) return;
    row[slot] = Math.max(0, nowMs - m.time) / 1000;
    this.delivered++;
  }

  /** Whether `message` has reached `node`. */
  has(message: number, node: number): boolean {
    const m = this.world.messages[message]!;
    const row = this.#latency[message]!;
    return m.to >= 0 ? node === m.to && !Number.isNaN(row[0]!) : !Number.isNaN(row[node]!);
  }

  /**
   * Delivery ratio per kind of message (`delivery_ratio_dm`, `_chat`, `_blog`): which traffic
   * a crowded channel sheds first. A kind with no messages is left out.
   */
  ratioByKind(): { [name: string]: number } {
    const expected: { [kind: string]: number } = {};
    const delivered: { [kind: string]: number } = {};
    this.world.messages.forEach((m, i) => {
      let got = 0;
      for (const v of this.#latency[i]!) if (!Number.isNaN(v)) got++;
      expected[m.kind] = (expected[m.kind] ?? 0) + expectedPairs(m, this.world.scenario.nodes);
      delivered[m.kind] = (delivered[m.kind] ?? 0) + got;
    });
    const out: { [name: string]: number } = {};
    for (const kind of ['dm', 'chat', 'blog'] as const) {
      if (expected[kind]) out[`delivery_ratio_${kind}`] = deliveryRatio(delivered[kind]!, expected[kind]);
    }
    return out;
  }

  /** Every latency recorded, seconds: of deliveries to other nodes (an author's own node is not a delivery over the air). */
  latencies(): Float64Array {
    const out: number[] = [];
    this.#latency.forEach((row, i) => {
      const own = this.world.messages[i]!.to < 0 ? this.world.messages[i]!.from : -1;
      row.forEach((v, node) => {
        if (node !== own && !Number.isNaN(v)) out.push(v);
      });
    });
    return Float64Array.from(out);
  }

  /** Delivery ratio over time: at each sample instant, delivered pairs / pairs of messages written by then. */
  timeline(samples = 100): { t_s: number; ratio: number }[] {
    const { messages, durationMs } = this.world;
    const n = this.world.scenario.nodes;
    const deliveredAt: number[] = [];
    this.#latency.forEach((row, i) => {
      const m = messages[i]!;
      for (const v of row) if (!Number.isNaN(v)) deliveredAt.push(m.time + v * 1000);
    });
    deliveredAt.sort((a, b) => a - b);
    const out: { t_s: number; ratio: number }[] = [];
    let d = 0;
    let e = 0;
    let mi = 0;
    for (let s = 1; s <= samples; s++) {
      const t = (durationMs * s) / samples;
      while (mi < messages.length && messages[mi]!.time <= t) e += expectedPairs(messages[mi++]!, n);
      while (d < deliveredAt.length && deliveredAt[d]! <= t) d++;
      out.push({ t_s: round(t / 1000, 3), ratio: deliveryRatio(d, e) });
    }
    return out;
  }
}

/** One strategy's figures (SPEC §5). */
export interface StrategyMetrics {
  messages: number;
  expected: number;
  delivered: number;
  delivery_ratio: number;
  latency_s: { p50: number; p90: number; p99: number; max: number };
  frames: number;
  bytes_on_air: number;
  airtime_s: number;
  airtime_per_delivery_ms: number;
  max_duty_cycle: number;
  duty_cycle_violations: number;
  collisions: number;
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/**
 * delivered / expected to 4 decimals, 1 only when everything arrived: a shortfall of under
 * 0.005% would round up to 1, so it shows as 0.9999 instead. Nothing expected counts as 1.
 */
export function deliveryRatio(delivered: number, expected: number): number {
  if (expected === 0) return 1;
  const ratio = round(delivered / expected, 4);
  return delivered < expected ? Math.min(ratio, 0.9999) : ratio;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[at]!;
}

/**
 * The highest airtime share of any `windowMs` window for one node, and how many of its
 * transmissions end a window holding more than `legal` of it. Transmissions are in start
 * order and do not overlap (one radio).
 */
export function dutyCycleOf(starts: readonly number[], lengths: readonly number[], windowMs: number, legal: number): { max: number; violations: number } {
  const n = starts.length;
  if (n === 0) return { max: 0, violations: 0 };
  const ends = starts.map((s, i) => s + lengths[i]!);
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i]! + lengths[i]!;
  /** Airtime inside [a, b). */
  const within = (a: number, b: number, lo: number, hi: number): number => {
    // lo: first tx with end > a; hi: first tx with start >= b.
    if (hi <= lo) return 0;
    let sum = prefix[hi]! - prefix[lo]!;
    sum -= Math.max(0, a - starts[lo]!);
    sum -= Math.max(0, ends[hi - 1]! - b);
    return Math.max(0, sum);
  };
  let max = 0;
  let violations = 0;
  // Windows starting at each transmission's start.
  let hi = 0;
  for (let i = 0; i < n; i++) {
    const a = starts[i]!;
    const b = a + windowMs;
    if (hi < i) hi = i;
    while (hi < n && starts[hi]! < b) hi++;
    max = Math.max(max, within(a, b, i, hi));
  }
  // Windows ending at each transmission's end (also the violation check).
  let lo = 0;
  for (let i = 0; i < n; i++) {
    const b = ends[i]!;
    const a = b - windowMs;
    while (lo < i && ends[lo]! <= a) lo++;
    const used = within(a, b, lo, i + 1);
    max = Math.max(max, used);
    if (used > legal * windowMs + 1e-6) violations++;
  }
  return { max: max / windowMs, violations };
}

/** Duty cycle over the nodes of one run, from the log of every transmission. */
export interface ChannelDuty {
  /** The highest share of any rolling hour one node transmitted. */
  max: number;
  /** Transmissions that ended an hour holding more than the legal duty cycle. */
  violations: number;
  /**
   * Nodes that spent their whole airtime allowance (the governor's share of the legal duty
   * cycle, to within 1%) in some rolling hour: a node at its cap holds frames back, so many of
   * them mean the traffic asks more of the channel than it carries. 0 where the region sets
   * no duty cycle.
   */
  nodesAtCap: number;
}

export function channelDuty(world: Pick<World, 'radio'>, channel: Pick<Channel, 'size' | 'txStarts' | 'txLengths'>): ChannelDuty {
  const legal = world.radio.limits.dutyCycle;
  const cap = legal >= 1 ? Number.POSITIVE_INFINITY : 0.99 * legal * DEFAULT_SHARE_OF_LEGAL;
  const duty: ChannelDuty = { max: 0, violations: 0, nodesAtCap: 0 };
  for (let i = 0; i < channel.size; i++) {
    const d = dutyCycleOf(channel.txStarts[i]!, channel.txLengths[i]!, HOUR_MS, legal);
    duty.max = Math.max(duty.max, d.max);
    duty.violations += d.violations;
    if (d.max >= cap) duty.nodesAtCap++;
  }
  return duty;
}

/** The SPEC §5 figures of one finished run. */
export function summarise(world: World, recorder: DeliveryRecorder, channel: Channel, duty = channelDuty(world, channel)): StrategyMetrics {
  const latencies = recorder.latencies().sort();
  const s = channel.stats;
  return {
    messages: world.messages.length,
    expected: world.expected,
    delivered: recorder.delivered,
    delivery_ratio: deliveryRatio(recorder.delivered, world.expected),
    latency_s: {
      p50: round(percentile(latencies, 0.5), 1),
      p90: round(percentile(latencies, 0.9), 1),
      p99: round(percentile(latencies, 0.99), 1),
      max: round(latencies.length ? latencies[latencies.length - 1]! : 0, 1),
    },
    frames: s.frames,
    bytes_on_air: s.bytesOnAir,
    airtime_s: round(s.airtimeMs / 1000, 3),
    airtime_per_delivery_ms: recorder.delivered === 0 ? 0 : round(s.airtimeMs / recorder.delivered, 1),
    max_duty_cycle: round(duty.max, 4),
    duty_cycle_violations: duty.violations,
    collisions: s.collisions,
  };
}
