/**
 * The world of one scenario, built once and shared by every strategy so they face the very
 * same nodes, positions, link budgets, churn, partitions and traffic (SPEC §5):
 *
 * - placement: `random` (uniform in area_m), `grid` (rows of ⌈√n⌉, spacing_m apart), `line`
 *   (along x, spacing_m apart), `clusters` (⌈√n / 2⌉ centres uniform in area_m, nodes normal
 *   around them with σ = 5% of the shorter side, clipped to the area), or explicit `positions`;
 * - churn: each node alternates online and offline with exponential durations, mean offline
 *   `mean_offline_s` and mean online `mean_offline_s·(1 − f)/f`, so a share f is offline on
 *   average; a node starts offline with probability f;
 * - traffic: for each node, independent Poisson processes of DMs, chat and blog posts at the
 *   scenario's rates until `until_s`; bodies uniform in body_bytes; a DM goes to a uniformly
 *   chosen other node, chat and blog posts to every node. A message whose author's node is
 *   offline at that moment is not written (nobody can type into a powered-off node).
 *
 * Each part draws from its own seeded stream (random.ts).
 */
import { loraAirtimeMs } from '../radio/lora-airtime.ts';
import type { Cut } from './channel.ts';
import { createRandom } from './random.ts';
import { computeLinkBudget, noiseFloorDbm, preambleMs, sensitivityDbm, type LinkBudget } from './radio-model.ts';
import { resolveRadio, type ResolvedRadio, type Scenario } from './scenario.ts';

export type MessageKind = 'dm' | 'chat' | 'blog';

/** One message some person writes, identical for every strategy. */
export interface Message {
  index: number;
  /** When it is written, ms since the start. */
  time: number;
  from: number;
  kind: MessageKind;
  /** Recipient node for a DM; -1 for chat and blog (every node). */
  to: number;
  /** Body size in bytes. */
  bytes: number;
}

export interface World {
  scenario: Scenario;
  seed: number;
  radio: ResolvedRadio;
  xs: Float64Array;
  ys: Float64Array;
  budget: LinkBudget;
  sensitivityDbm: number;
  noiseFloorDbm: number;
  preambleMs: number;
  /** Time on air of a full 255-byte frame, ms. */
  maxFrameAirtimeMs: number;
  durationMs: number;
  /** Whether each node starts online. */
  startsOnline: Uint8Array;
  /** Per node, the instants (ms) its power toggles, ascending. */
  toggles: number[][];
  cuts: Cut[];
  messages: Message[];
  /** (message, node) pairs that should be delivered. */
  expected: number;
}

/** Build the world of `scenario` (with `seed` instead of the scenario's own, if given). */
export function buildWorld(scenario: Scenario, seed = scenario.seed): World {
  const radio = resolveRadio(scenario);
  const n = scenario.nodes;
  const { xs, ys } = place(scenario, seed);
  const sensitivity = sensitivityDbm(radio.preset);
  const shadowing = createRandom(seed, 'shadowing');
  const budget = computeLinkBudget(xs, ys, scenario.radio.tx_power_dbm, scenario.radio.path_loss, sensitivity, (sd) => shadowing.normal(sd));
  const durationMs = scenario.duration_s * 1000;

  const churnRandom = createRandom(seed, 'churn');
  const startsOnline = new Uint8Array(n).fill(1);
  const toggles: number[][] = Array.from({ length: n }, () => []);
  const f = scenario.churn.offline_fraction;
  if (f > 0) {
    const meanOff = scenario.churn.mean_offline_s * 1000;
    const meanOn = (meanOff * (1 - f)) / f;
    for (let i = 0; i < n; i++) {
      let on = churnRandom.next() >= f;
      startsOnline[i] = on ? 1 : 0;
      let t = 0;
      for (;;) {
        t += Math.round(churnRandom.exponential(on ? meanOn : meanOff));
        if (t >= durationMs) break;
        toggles[i]!.push(t);
        on = !on;
      }
    }
  }

  const messages = makeTraffic(scenario, seed, startsOnline, toggles);
  let expected = 0;
  for (const m of messages) expected += expectedPairs(m, n);
  return {
    scenario,
    seed,
    radio,
    xs,
    ys,
    budget,
    sensitivityDbm: sensitivity,
    noiseFloorDbm: noiseFloorDbm(radio.preset.bw),
    preambleMs: preambleMs(radio.preset),
    maxFrameAirtimeMs: loraAirtimeMs(radio.preset, 255),
    durationMs,
    startsOnline,
    toggles,
    cuts: scenario.partitions.map((p) => ({ fromMs: p.from_s * 1000, untilMs: p.until_s * 1000, x: p.cut_x_m })),
    messages,
    expected,
  };
}

/** The (message, node) pairs a message should reach: its recipient's node, or every node (SPEC §5). */
export function expectedPairs(message: { to: number }, nodes: number): number {
  return message.to >= 0 ? 1 : nodes;
}

/** Whether node `i` is online at `timeMs`. */
export function isOnlineAt(world: Pick<World, 'startsOnline' | 'toggles'>, i: number, timeMs: number): boolean {
  let on = world.startsOnline[i] === 1;
  for (const t of world.toggles[i]!) {
    if (t > timeMs) break;
    on = !on;
  }
  return on;
}

function place(s: Scenario, seed: number): { xs: Float64Array; ys: Float64Array } {
  const n = s.nodes;
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  if (s.positions) {
    s.positions.forEach(([x, y], i) => {
      xs[i] = x;
      ys[i] = y;
    });
    return { xs, ys };
  }
  const random = createRandom(seed, 'placement');
  const [w, h] = s.area_m;
  switch (s.placement) {
    case 'line':
      for (let i = 0; i < n; i++) xs[i] = i * s.spacing_m;
      break;
    case 'grid': {
      const cols = Math.ceil(Math.sqrt(n));
      for (let i = 0; i < n; i++) {
        xs[i] = (i % cols) * s.spacing_m;
        ys[i] = Math.floor(i / cols) * s.spacing_m;
      }
      break;
    }
    case 'clusters': {
      const k = Math.max(1, Math.ceil(Math.sqrt(n) / 2));
      const sd = 0.05 * Math.min(w, h);
      const centres = Array.from({ length: k }, () => [random.uniform(0.15 * w, 0.85 * w), random.uniform(0.15 * h, 0.85 * h)] as const);
      for (let i = 0; i < n; i++) {
        const [cx, cy] = centres[i % k]!;
        xs[i] = Math.min(w, Math.max(0, cx + random.normal(sd)));
        ys[i] = Math.min(h, Math.max(0, cy + random.normal(sd)));
      }
      break;
    }
    default:
      for (let i = 0; i < n; i++) {
        xs[i] = random.uniform(0, w);
        ys[i] = random.uniform(0, h);
      }
  }
  return { xs, ys };
}

function makeTraffic(s: Scenario, seed: number, startsOnline: Uint8Array, toggles: number[][]): Message[] {
  const random = createRandom(seed, 'traffic');
  const n = s.nodes;
  const untilMs = s.traffic.until_s * 1000;
  const rates: [MessageKind, number][] = [
    ['dm', n > 1 ? s.traffic.dm_per_node_per_hour / 3_600_000 : 0],
    ['chat', s.traffic.chat_per_node_per_hour / 3_600_000],
    ['blog', s.traffic.blog_per_node_per_day / 86_400_000],
  ];
  const drafts: Omit<Message, 'index'>[] = [];
  const [minBytes, maxBytes] = s.traffic.body_bytes;
  for (let from = 0; from < n; from++) {
    for (const [kind, perMs] of rates) {
      if (perMs <= 0) continue;
      let t = 0;
      for (;;) {
        t += random.exponential(1 / perMs);
        if (t >= untilMs) break;
        const time = Math.round(t);
        let to = -1;
        if (kind === 'dm') {
          to = random.int(n - 1);
          if (to >= from) to++;
        }
        const bytes = minBytes + random.int(maxBytes - minBytes + 1);
        if (isOnlineAt({ startsOnline, toggles }, from, time)) drafts.push({ time, from, kind, to, bytes });
      }
    }
  }
  const order: { [k in MessageKind]: number } = { dm: 0, chat: 1, blog: 2 };
  drafts.sort((a, b) => a.time - b.time || a.from - b.from || order[a.kind] - order[b.kind]);
  return drafts.map((d, index) => ({ index, ...d }));
}

/** What a scenario is expected to hold in memory, from the scenario alone (no world built). */
export interface MemoryEstimate {
  /** Peak V8 heap the run is expected to need, bytes (an upper bound: calibrated on measured peaks). */
  bytes: number;
  /** Expected messages written, and power toggles of churn. */
  messages: number;
  toggles: number;
  /** What to reduce first: the part of the estimate that weighs most. */
  largest: string;
}

/**
 * Bytes per item, calibrated on the peak V8 heap (used heap sampled every 50 ms; garbage
 * included, so above what must be live) of real runs at 32759c7 on a 2-core machine, each
 * estimate then at or above its measured peak (estimate / peak heap, MiB):
 * citizen 30 nodes × 4 h at 30 chat an hour each 299 / 128, 50 × 2 h at 12 chat and 3 DM
 * 255 / 125, 100 × 2 h 247 / 174, 100 × 4 h 310 / 277, 300 × 10 min 675 / 445, 300 × 30 min
 * 775 / 584, town-300 cut to 30 min with flood 780 / 566; flood 100 × 4 h at 200 chat an hour
 * 300 / 221, and with 1.44 million churn toggles (1 s offline spells) 480 / 409.
 * town-300 (12 h) comes to 3,061 MiB against the 2.8 GB of process RSS seen at its peak.
 */
const MEMORY = {
  /** The process before any world: modules, tsx, the engine. */
  base: 32 * 2 ** 20,
  /** A message in the world: its object, its draft, its engine event and closure, its delivery row's header. */
  message: 600,
  /** A (message, node) pair: the delivery row's slot, and the delivery times and latencies gathered at the end. */
  pair: 20,
  /** A churn toggle: its time, its engine event and closure (measured 286 bytes). */
  toggle: 320,
  /** A pair of nodes in the link budget, if all of them hear each other (the lists are built as arrays first). */
  linkPair: 48,
  /** Citizen: a node (MeshNode, store, Sync and its sketches, SimLink, governor, queues). */
  citizenNode: 1.2 * 2 ** 20,
  /** Citizen: a record stored at a node, beside its body (envelope, signature, store index, id sets, queues). */
  citizenCopy: 2_000,
  /** Citizen: a directory entry every node holds of every household. */
  citizenDirectory: 2_500,
  /** Flood: a (message, node) pair (packet history, queue) and a node. */
  floodPair: 12,
  floodNode: 64 * 1024,
} as const;

/**
 * The memory a run of `scenario` with `strategies` is expected to need at its peak, bytes,
 * estimated from the scenario alone so that a run that cannot fit is refused before its world
 * (every message, every churn toggle) is built: expected messages from the traffic rates over
 * `until_s` (only written while the author is online), expected churn toggles, per-node store
 * growth for the citizen strategy as if every node stored every record (what is not stored in
 * a crowded channel waits in queues instead), n² link budgets and each strategy's state.
 */
export function estimateMemory(scenario: Scenario, strategies: readonly string[]): MemoryEstimate {
  const n = scenario.nodes;
  const { traffic, churn } = scenario;
  const online = 1 - churn.offline_fraction;
  const hours = traffic.until_s / 3600;
  const dms = n > 1 ? n * hours * traffic.dm_per_node_per_hour * online : 0;
  const broadcasts = n * hours * (traffic.chat_per_node_per_hour + traffic.blog_per_node_per_day / 24) * online;
  // Poisson counts: three standard deviations of slack.
  const slack = (mean: number) => mean + 3 * Math.sqrt(mean);
  const messages = slack(dms) + slack(broadcasts);
  const pairs = slack(dms) + slack(broadcasts) * n;
  const cycleS = churn.offline_fraction > 0 ? churn.mean_offline_s / churn.offline_fraction : Infinity;
  const toggles = churn.offline_fraction > 0 ? slack((2 * n * scenario.duration_s) / cycleS) : 0;
  const body = (traffic.body_bytes[0] + traffic.body_bytes[1]) / 2;

  const parts = {
    traffic: messages * MEMORY.message + pairs * MEMORY.pair,
    churn: toggles * MEMORY.toggle,
    nodes: n * n * MEMORY.linkPair,
  };
  if (strategies.includes('citizen')) {
    parts.traffic += messages * n * (MEMORY.citizenCopy + body);
    parts.nodes += n * MEMORY.citizenNode + n * n * MEMORY.citizenDirectory;
  }
  if (strategies.includes('flood')) {
    parts.traffic += pairs * MEMORY.floodPair;
    parts.nodes += n * MEMORY.floodNode;
  }
  const advice: { [part in keyof typeof parts]: string } = {
    traffic: 'the traffic (traffic.*_per_node_*, traffic.until_s) or duration_s',
    churn: 'the churn (a longer churn.mean_offline_s, a smaller churn.offline_fraction) or duration_s',
    nodes: 'the nodes',
  };
  const largest = (Object.keys(parts) as (keyof typeof parts)[]).reduce((a, b) => (parts[b] > parts[a] ? b : a));
  return { bytes: MEMORY.base + parts.traffic + parts.churn + parts.nodes, messages, toggles, largest: advice[largest] };
}
