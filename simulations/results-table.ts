/**
 * Runs every shipped scenario (simulations/scenarios/*.json) with both strategies and prints
 * the README's results table as Markdown, writing each run's files under `sim-out/<name>/`:
 *
 *   node --import ./bin/node-compat.mjs --import tsx simulations/results-table.ts [NAME...]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { airtimeSvg, deliverySvg, mapSvg } from './pictures.ts';
import { metricsJson, runScenario } from './run.ts';
import { parseScenario } from './scenario.ts';

const dir = fileURLToPath(new URL('./scenarios/', import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir).filter((f) => f.endsWith('.json') && (only.length === 0 || only.includes(f.replace(/\.json$/, ''))));
const rows: string[] = [
  '| scenario | nodes | strategy | delivered | p50 / p90 latency | frames | airtime per delivery | max duty cycle | violations | collisions | wall |',
  '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
];
for (const file of files.sort()) {
  const scenario = parseScenario(JSON.parse(readFileSync(join(dir, file), 'utf8')));
  const result = await runScenario(scenario, { strategies: ['citizen', 'flood'] });
  const out = join('sim-out', scenario.name);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'metrics.json'), metricsJson(result));
  writeFileSync(join(out, 'map.svg'), mapSvg(result.world));
  writeFileSync(join(out, 'delivery.svg'), deliverySvg(result.world, result.results));
  writeFileSync(join(out, 'airtime.svg'), airtimeSvg(result.world, result.results));
  for (const r of result.results) {
    const m = r.metrics;
    rows.push(
      `| ${scenario.name} | ${scenario.nodes} | ${r.name} | ${(m.delivery_ratio * 100).toFixed(1)}% | ${m.latency_s.p50} s / ${m.latency_s.p90} s | ${m.frames} | ${(m.airtime_per_delivery_ms / 1000).toFixed(2)} s | ${(m.max_duty_cycle * 100).toFixed(1)}% | ${m.duty_cycle_violations} | ${m.collisions} | ${r.wallS.toFixed(0)} s |`,
    );
  }
  console.error(`${scenario.name}: done in ${result.wallS.toFixed(0)} s`);
}
console.log(rows.join('\n'));
