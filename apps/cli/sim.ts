/**
 * `citizen sim SCENARIO.json [--out DIR] [--seed N] [--strategy citizen|flood] [--compare flood] [--quiet]`
 * (SPEC §2, §5): run the network simulator, write DIR/metrics.json and the pictures, show a
 * progress bar on a terminal and a summary table at the end.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { SimError } from '../../simulations/errors.ts';
import { airtimeSvg, deliverySvg, mapSvg } from '../../simulations/pictures.ts';
import { metricsJson, runScenario, STRATEGY_NAMES, type SimResult } from '../../simulations/run.ts';
import { parseScenario } from '../../simulations/scenario.ts';
import { buildWorld, estimateMemoryBytes } from '../../simulations/world.ts';
import { AppError } from '../errors.ts';
import { stringOption, type Command, type Io } from './command.ts';

function strategyName(value: string | undefined, flag: string, fallback: string): string {
  const name = value ?? fallback;
  if (!(STRATEGY_NAMES as readonly string[]).includes(name)) {
    throw new AppError('USAGE', `${flag} must be one of ${STRATEGY_NAMES.join(', ')}, got "${name}"`, 2);
  }
  return name;
}

/** The end-of-run table: one row per strategy. */
export function summaryTable(result: SimResult): string[] {
  const head = ['strategy', 'delivered', 'ratio', 'p50 s', 'p90 s', 'frames', 'airtime s', 'ms/delivery', 'max duty', 'violations', 'collisions'];
  const rows = result.results.map((r) => {
    const m = r.metrics;
    return [r.name, `${m.delivered}/${m.expected}`, `${(m.delivery_ratio * 100).toFixed(2)}%`, String(m.latency_s.p50), String(m.latency_s.p90), String(m.frames), m.airtime_s.toFixed(0), m.airtime_per_delivery_ms.toFixed(1), `${(m.max_duty_cycle * 100).toFixed(2)}%`, String(m.duty_cycle_violations), String(m.collisions)];
  });
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (cells: string[]) => cells.map((c, k) => (k === 0 ? c.padEnd(widths[k]!) : c.padStart(widths[k]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function progressBar(): { update(strategy: string, fraction: number): void; done(): void } {
  const stream = process.stderr;
  let last = '';
  return {
    update(strategy, fraction) {
      const width = 30;
      const filled = Math.round(fraction * width);
      const text = `${strategy.padEnd(8)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(fraction * 100)}%`;
      if (text !== last) stream.write(`\r${text}`);
      last = text;
    },
    done() {
      if (last) stream.write('\r' + ' '.repeat(last.length) + '\r');
    },
  };
}

export const simCommand: Command = {
  name: 'sim',
  summary: 'Run the network simulator on a scenario file; writes DIR/metrics.json and pictures (map.svg, delivery.svg, airtime.svg).',
  usage: 'citizen sim SCENARIO.json [--out DIR] [--seed N] [--strategy citizen|flood] [--compare flood] [--quiet]',
  help: [
    '  --out DIR           where metrics.json and the pictures go (default: sim-out/<scenario name>)',
    '  --seed N            override the scenario seed',
    '  --strategy NAME     citizen (default) or flood',
    '  --compare NAME      also run this strategy (flood) on the same world',
    '  --quiet             no progress bar (there is none when not on a terminal either)',
  ].join('\n'),
  options: {
    out: { type: 'string' },
    seed: { type: 'string' },
    strategy: { type: 'string' },
    compare: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  allowPositionals: true,
  async run(args, io: Io) {
    if (args.positionals.length !== 1) throw new AppError('USAGE', 'give exactly one SCENARIO.json (see "citizen sim --help")', 2);
    const file = args.positionals[0]!;
    const strategy = strategyName(stringOption(args, 'strategy'), '--strategy', 'citizen');
    const compareName = stringOption(args, 'compare');
    const strategies = [strategy];
    if (compareName !== undefined) {
      const other = strategyName(compareName, '--compare', 'flood');
      if (other !== strategy) strategies.push(other);
    }
    let seed: number | undefined;
    const seedText = stringOption(args, 'seed');
    if (seedText !== undefined) {
      seed = Number(seedText);
      if (seedText.trim() === '' || !Number.isSafeInteger(seed) || seed < 0) throw new AppError('USAGE', `--seed must be a whole number ≥ 0, got "${seedText}"`, 2);
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      throw new AppError('SCENARIO_UNREADABLE', `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, 2, { cause });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new AppError('SCENARIO_INVALID', `${file} is not valid JSON: ${(cause as Error).message}`, 2, { cause });
    }
    try {
      const scenario = parseScenario(json);
      const world = buildWorld(scenario, seed ?? scenario.seed);
      const need = estimateMemoryBytes(world, strategies);
      const limit = getHeapStatistics().heap_size_limit;
      if (need > limit * 0.8) {
        throw new SimError(
          'SCENARIO_TOO_LARGE',
          `${scenario.name} would need about ${Math.ceil(need / 2 ** 20)} MiB (${world.messages.length} messages on ${scenario.nodes} nodes), more than 80% of the ${Math.floor(limit / 2 ** 20)} MiB heap; shorten it, thin the traffic, run --strategy flood, or raise the heap (NODE_OPTIONS=--max-old-space-size=MiB)`,
        );
      }
      const out = stringOption(args, 'out') ?? join('sim-out', scenario.name.replace(/[^A-Za-z0-9._-]/g, '_'));
      const bar = !args.values.quiet && process.stderr.isTTY === true ? progressBar() : undefined;
      let result: SimResult;
      try {
        result = await runScenario(scenario, { strategies, ...(seed === undefined ? {} : { seed }), ...(bar ? { onProgress: bar.update } : {}) });
      } finally {
        bar?.done();
      }
      await mkdir(out, { recursive: true });
      await writeFile(join(out, 'metrics.json'), metricsJson(result));
      await writeFile(join(out, 'map.svg'), mapSvg(result.world));
      await writeFile(join(out, 'delivery.svg'), deliverySvg(result.world, result.results));
      await writeFile(join(out, 'airtime.svg'), airtimeSvg(result.world, result.results));
      io.out(`${scenario.name}: ${scenario.nodes} nodes, ${scenario.duration_s} s simulated, ${result.world.messages.length} messages, seed ${result.world.seed}; ${result.events} events in ${result.wallS.toFixed(1)} s`);
      for (const line of summaryTable(result)) io.out(line);
      io.out(`Wrote ${join(out, 'metrics.json')}, map.svg, delivery.svg, airtime.svg`);
      return 0;
    } catch (err) {
      if (err instanceof SimError) throw new AppError(err.code, err.message, 2, { cause: err });
      throw err;
    }
  },
};
