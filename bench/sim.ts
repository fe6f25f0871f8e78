/**
 * Simulator figures (issue 4): events per second and simulated seconds per wall-clock second
 * for 10, 100, 300 and 1,000 nodes with the default traffic, per strategy, and the peak
 * memory; and the headline: a 100-node, 24-hour scenario with both strategies.
 *
 * Nodes are placed at random at the density of the default scenario (100 nodes on
 * 3 km × 3 km), so larger networks are larger areas, not denser ones.
 */
import { builtinFactories, runStrategy } from '../simulations/run.ts';
import { parseScenario } from '../simulations/scenario.ts';
import { buildWorld } from '../simulations/world.ts';
import type { Report } from './harness.ts';

export interface SimBenchOptions {
  quick: boolean;
}

function scenarioFor(nodes: number, durationS: number) {
  const side = Math.round(300 * Math.sqrt(nodes));
  return parseScenario({ name: `bench-${nodes}`, nodes, duration_s: durationS, area_m: [side, side], churn: { offline_fraction: 0.1, mean_offline_s: 7200 } });
}

export async function benchSim(report: Report, options: SimBenchOptions): Promise<void> {
  report.section('Simulator (default traffic, 10% churn, LongFast EU868)');
  const strategies = Object.keys(builtinFactories).sort();
  const sizes: [number, number][] = options.quick ? [[10, 3600], [100, 3600]] : [[10, 86_400], [100, 86_400], [300, 86_400], [1000, 6 * 3600]];
  let peakHeap = 0;
  for (const strategy of strategies) {
    for (const [nodes, durationS] of sizes) {
      // The citizen strategy runs the real protocol; keep its large runs to a few hours.
      const duration = strategy === 'citizen' && nodes > 100 ? Math.min(durationS, 2 * 3600) : durationS;
      const world = buildWorld(scenarioFor(nodes, duration));
      const result = await runStrategy(world, strategy, builtinFactories[strategy]!);
      peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
      const label = `${strategy} ${nodes} nodes, ${duration / 3600} h`;
      report.add(`${label}: events/s`, result.events / result.wallS, 'events/s');
      report.add(`${label}: simulated s per wall s`, duration / result.wallS, 'x', `${result.wallS.toFixed(1)} s wall, ${(result.metrics.delivery_ratio * 100).toFixed(1)}% delivered`);
    }
  }
  if (!options.quick && strategies.includes('citizen')) {
    const world = buildWorld(scenarioFor(100, 86_400));
    let wall = 0;
    for (const strategy of ['citizen', 'flood']) wall += (await runStrategy(world, strategy, builtinFactories[strategy]!)).wallS;
    report.add('100 nodes, 24 h, both strategies: wall time', wall, 's', 'issue 4 target ≤ 60 s');
  }
  report.add('simulator peak heap', peakHeap / 2 ** 20, 'MiB');
  report.add('process peak RSS', process.resourceUsage().maxRSS / 1024, 'MiB');
}
