/** Small worlds for simulator tests: explicit positions, no shadowing, no traffic unless asked. */
import { Channel } from '../../simulations/channel.ts';
import { Simulator } from '../../simulations/engine.ts';
import { parseScenario, type Scenario } from '../../simulations/scenario.ts';
import { buildWorld, type World } from '../../simulations/world.ts';

export function quietScenario(positions: [number, number][], extra: Record<string, unknown> = {}): Scenario {
  return parseScenario({
    name: 'test',
    nodes: positions.length,
    duration_s: 3600,
    positions,
    radio: { path_loss: { shadowing_db: 0 } },
    traffic: { dm_per_node_per_hour: 0, chat_per_node_per_hour: 0, blog_per_node_per_day: 0 },
    ...extra,
  });
}

export function channelFor(world: World): { sim: Simulator; channel: Channel } {
  const sim = new Simulator();
  const channel = new Channel(sim, {
    budget: world.budget,
    xs: world.xs,
    sensitivityDbm: world.sensitivityDbm,
    noiseFloorDbm: world.noiseFloorDbm,
    preambleMs: world.preambleMs,
    cuts: world.cuts,
  });
  return { sim, channel };
}

export function quietWorld(positions: [number, number][], extra: Record<string, unknown> = {}): World {
  return buildWorld(quietScenario(positions, extra));
}

/** Every frame each node received: [node, from] pairs in order. */
export function recordReceptions(channel: Channel): [number, number][] {
  const got: [number, number][] = [];
  for (let i = 0; i < channel.size; i++) channel.attach(i, (tx) => got.push([i, tx.from]));
  return got;
}
