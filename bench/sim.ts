/**
 * Simulator figures (issue 4): events per second and simulated seconds per wall-clock second
 * for 10, 100, 300 and 1,000 nodes with the default traffic, per strategy (with the events
 * and CPU seconds of each run), and the peak memory: the heap sampled during each run and the
 * process's peak RSS; with BENCH_SIM_FULL=1 also the headline: a 100-node, 24-hour scenario
 * with both strategies.
 *
 * Nodes are placed at random at the density of the default scenario (100 nodes on
 * 3 km × 3 km), so larger networks are larger areas, not denser ones.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

/** A full garbage collection, so that a run's sampled heap is not the garbage of the one before. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

export async function benchSim(report: Report, options: SimBenchOptions): Promise<void> {
  report.section('Simulator (default traffic, 10% churn, LongFast EU868)');
  const strategies = Object.keys(builtinFactories).sort();
  const sizes: [number, number][] = options.quick ? [[10, 3600], [100, 3600]] : [[10, 86_400], [100, 86_400], [300, 86_400], [1000, 6 * 3600]];
  let peakHeap = 0;
  // The citizen strategy runs the real protocol on every node: shorter spans keep the bench
  // to minutes; the rate (simulated s per wall s) is the comparable figure.
  const citizenSpan: { [nodes: number]: number } = { 10: 86_400, 100: 2 * 3600, 300: 1800, 1000: 600 };
  for (const strategy of strategies) {
    for (const [nodes, durationS] of sizes) {
      const duration = strategy === 'citizen' ? Math.min(durationS, citizenSpan[nodes] ?? durationS) : durationS;
      const world = buildWorld(scenarioFor(nodes, duration));
      // Heap sampled while the run turns the event loop (the async citizen strategy), and at its end.
      collectGarbage();
      let runPeak = 0;
      const sample = () => (runPeak = Math.max(runPeak, process.memoryUsage().heapUsed));
      const sampler = setInterval(sample, 100);
      const cpuBefore = process.cpuUsage();
      const result = await runStrategy(world, strategy, builtinFactories[strategy]!);
      const cpu = process.cpuUsage(cpuBefore);
      clearInterval(sampler);
      sample();
      peakHeap = Math.max(peakHeap, runPeak);
      const label = `${strategy} ${nodes} nodes, ${duration >= 3600 ? `${duration / 3600} h` : `${duration / 60} min`}`;
      report.add(`${label}: events/s`, result.events / result.wallS, 'events/s', `${result.events} events, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU`);
      report.add(`${label}: simulated s per wall s`, duration / result.wallS, 'x', `${result.wallS.toFixed(1)} s wall, ${(result.metrics.delivery_ratio * 100).toFixed(1)}% delivered`);
      report.add(`${label}: peak heap`, runPeak / 2 ** 20, 'MiB');
    }
  }
  // The issue's headline figure; opt in with BENCH_SIM_FULL=1 (it takes as long as the protocol needs).
  if (!options.quick && strategies.includes('citizen') && process.env.BENCH_SIM_FULL === '1') {
    const world = buildWorld(scenarioFor(100, 86_400));
    let wall = 0;
    for (const strategy of ['citizen', 'flood']) wall += (await runStrategy(world, strategy, builtinFactories[strategy]!)).wallS;
    report.add('100 nodes, 24 h, both strategies: wall time', wall, 's', 'issue 4 target ≤ 60 s');
  }
  report.add('simulator peak heap', peakHeap / 2 ** 20, 'MiB');
  report.add('process peak RSS', process.resourceUsage().maxRSS / 1024, 'MiB');
}
