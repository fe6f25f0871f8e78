/**
 * Running a scenario: build the world once, then run each strategy on its own engine and
 * channel over that same world, and gather the SPEC §5 metrics.
 */
import { Channel } from './channel.ts';
import { createCitizenStrategy } from './citizen.ts';
import { Simulator } from './engine.ts';
import { SimError } from './errors.ts';
import { createFloodStrategy } from './flood.ts';
import { channelDuty, DeliveryRecorder, round, summarise, type StrategyMetrics } from './metrics.ts';
import { createRandom } from './random.ts';
import type { Scenario } from './scenario.ts';
import type { StrategyFactory } from './strategy.ts';
import { buildWorld, type World } from './world.ts';

/** The strategies `citizen sim` knows by name. */
export const STRATEGY_NAMES = ['citizen', 'flood'] as const;

/** A strategy's metrics plus what the pictures need. */
export interface StrategyResult {
  name: string;
  metrics: StrategyMetrics;
  /** Strategy-specific counters (not part of SPEC §5 figures). */
  detail: { [name: string]: number };
  timeline: { t_s: number; ratio: number }[];
  /** Airtime per node, s. */
  airtimeByNode: number[];
  events: number;
  wallS: number;
}

export interface SimResult {
  world: World;
  results: StrategyResult[];
  events: number;
  wallS: number;
}

export interface RunOptions {
  /** Strategy names in the order to run them. */
  strategies: string[];
  /** Overrides the scenario's seed. */
  seed?: number;
  /** Factories by name; `flood` is built in, `citizen` is supplied by whoever can build it. */
  factories?: { [name: string]: StrategyFactory };
  /** Told the share of simulated time done, per strategy, at most about 200 times a run (never an engine event). */
  onProgress?: (strategy: string, fraction: number) => void;
  /** Wall-clock source for `wall_s` only (default performance.now). */
  wallClockMs?: () => number;
}

/** The built-in factories. */
export const builtinFactories: { [name: string]: StrategyFactory } = {
  citizen: (context) => createCitizenStrategy(context),
  flood: (context) => createFloodStrategy(context),
};

/** Run one strategy over `world`. */
export async function runStrategy(world: World, name: string, factory: StrategyFactory, options: Pick<RunOptions, 'onProgress' | 'wallClockMs'> = {}): Promise<StrategyResult> {
  const wall = options.wallClockMs ?? (() => performance.now());
  const started = wall();
  const sim = new Simulator();
  const channel = new Channel(sim, {
    budget: world.budget,
    xs: world.xs,
    sensitivityDbm: world.sensitivityDbm,
    noiseFloorDbm: world.noiseFloorDbm,
    preambleMs: world.preambleMs,
    cuts: world.cuts,
  });
  const recorder = new DeliveryRecorder(world);
  const strategy = factory({ sim, channel, world, recorder, random: createRandom(world.seed, `strategy:${name}`) });
  const n = world.scenario.nodes;
  for (let i = 0; i < n; i++) {
    if (!world.startsOnline[i]) {
      channel.setOnline(i, false);
      strategy.setOnline(i, false);
    }
    for (const t of world.toggles[i]!) {
      sim.at(t, () => {
        const on = !channel.online[i];
        channel.setOnline(i, on);
        strategy.setOnline(i, on);
      });
    }
  }
  for (const m of world.messages) {
    sim.at(m.time, () => {
      if (channel.online[m.from]) strategy.originate(m);
    });
  }
  await strategy.start();
  const end = world.durationMs;
  const onProgress = options.onProgress;
  if (onProgress) {
    let next = 0;
    sim.onAdvance = (now) => {
      if (now < next) return;
      next = now + end / 200;
      onProgress(name, Math.min(1, now / end));
    };
  }
  if (strategy.async) await sim.runAsync(end);
  else sim.run(end);
  onProgress?.(name, 1);
  await strategy.stop();
  const duty = channelDuty(world, channel);
  const airtimeByNode = channel.txLengths.map((l) => round(l.reduce((s, v) => s + v, 0) / 1000, 3));
  return {
    name,
    metrics: summarise(world, recorder, channel, duty),
    detail: { ...recorder.ratioByKind(), nodes_at_duty_cap: duty.nodesAtCap, ...strategy.detail?.() },
    timeline: recorder.timeline(),
    airtimeByNode,
    events: sim.events,
    wallS: (wall() - started) / 1000,
  };
}

/** Run the named strategies on `scenario`'s world. Throws SimError STRATEGY_UNKNOWN / STRATEGY_UNAVAILABLE. */
export async function runScenario(scenario: Scenario, options: RunOptions): Promise<SimResult> {
  const wall = options.wallClockMs ?? (() => performance.now());
  const started = wall();
  const factories = { ...builtinFactories, ...options.factories };
  for (const name of options.strategies) {
    if (!(STRATEGY_NAMES as readonly string[]).includes(name) && !factories[name]) {
      throw new SimError('STRATEGY_UNKNOWN', `unknown strategy "${name}"; known: ${STRATEGY_NAMES.join(', ')}`);
    }
    if (!factories[name]) throw new SimError('STRATEGY_UNAVAILABLE', `the ${name} strategy is not available in this build`);
  }
  const world = buildWorld(scenario, options.seed ?? scenario.seed);
  const results: StrategyResult[] = [];
  for (const name of options.strategies) results.push(await runStrategy(world, name, factories[name]!, options));
  return { world, results, events: results.reduce((s, r) => s + r.events, 0), wallS: (wall() - started) / 1000 };
}

/** `metrics.json` (SPEC §5), keys in the documented order; byte-identical for one seed apart from `wall_s`. */
export function metricsJson(result: SimResult): string {
  const { scenario, seed } = result.world;
  const strategies: { [name: string]: StrategyMetrics & { detail: { [name: string]: number } } } = {};
  for (const r of result.results) strategies[r.name] = { ...r.metrics, detail: r.detail };
  return (
    JSON.stringify(
      {
        scenario: scenario.name,
        seed,
        nodes: scenario.nodes,
        duration_s: scenario.duration_s,
        wall_s: round(result.wallS, 2),
        events: result.events,
        strategies,
      },
      null,
      2,
    ) + '\n'
  );
}
