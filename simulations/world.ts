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
  for (const m of messages) expected += m.to >= 0 ? 1 : n - 1;
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

/**
 * A rough upper bound of the memory a run needs, bytes: with the citizen strategy every node
 * may hold every message as a record in a memory-level store (measured: about 1,100 bytes of
 * store and index overhead per record beside its ~260 bytes, plus the sync's id sets), plus
 * the link budgets and the delivery table.
 */
export function estimateMemoryBytes(world: World, strategies: readonly string[]): number {
  const n = world.scenario.nodes;
  let perCopy = 0;
  for (const m of world.messages) perCopy += m.bytes + 1400;
  const citizen = strategies.includes('citizen') ? n * perCopy : 0;
  const pairs = world.budget.neighbours.reduce((sum, l) => sum + l.length, 0) * 12;
  return citizen + pairs + world.messages.length * n * 4 + n * 200_000;
}
