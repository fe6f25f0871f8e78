/** Same scenario and seed → byte-identical metrics apart from wall_s; the CLI writes the SPEC §5 files. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../apps/cli/main.ts';
import type { Io } from '../../apps/cli/command.ts';
import { metricsJson, runScenario } from '../../simulations/run.ts';
import { parseScenario } from '../../simulations/scenario.ts';

const small = {
  name: 'small-town',
  seed: 3,
  nodes: 25,
  duration_s: 4 * 3600,
  placement: 'random',
  area_m: [1500, 1500],
  churn: { offline_fraction: 0.1, mean_offline_s: 1800 },
  traffic: { dm_per_node_per_hour: 1, chat_per_node_per_hour: 1, blog_per_node_per_day: 2 },
  partitions: [{ from_s: 3600, until_s: 7200, cut_x_m: 750 }],
};

const withoutWall = (json: string) => json.replace(/"wall_s": [0-9.]+/, '"wall_s": 0');

function io(): Io & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), readStdin: async () => '', env: {}, stopSignal: () => new Promise(() => {}) };
}

describe('simulations/determinism and CLI', () => {
  it('same seed gives identical metrics apart from wall_s; another seed differs', async () => {
    const scenario = parseScenario(small);
    const a = metricsJson(await runScenario(scenario, { strategies: ['flood'] }));
    const b = metricsJson(await runScenario(scenario, { strategies: ['flood'] }));
    assert.equal(withoutWall(a), withoutWall(b));
    const seen: number[] = [];
    const withProgress = metricsJson(await runScenario(scenario, { strategies: ['flood'], onProgress: (_, f) => seen.push(f) }));
    assert.equal(withoutWall(withProgress), withoutWall(a), 'progress reports change nothing');
    assert.ok(seen.length > 10 && seen.at(-1) === 1);
    const c = metricsJson(await runScenario(scenario, { strategies: ['flood'], seed: 4 }));
    assert.notEqual(withoutWall(a), withoutWall(c));
    const m = JSON.parse(a);
    assert.deepEqual(Object.keys(m), ['scenario', 'seed', 'nodes', 'duration_s', 'wall_s', 'events', 'strategies']);
    assert.deepEqual(Object.keys(m.strategies.flood).slice(0, 12), ['messages', 'expected', 'delivered', 'delivery_ratio', 'latency_s', 'frames', 'bytes_on_air', 'airtime_s', 'airtime_per_delivery_ms', 'max_duty_cycle', 'duty_cycle_violations', 'collisions']);
    assert.equal(m.strategies.flood.duty_cycle_violations, 0);
    assert.ok(m.strategies.flood.delivered > 0);
  });

  it('citizen sim writes metrics.json and the pictures, and refuses bad scenarios naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'citizen-sim-'));
    try {
      const file = join(dir, 'scenario.json');
      writeFileSync(file, JSON.stringify({ ...small, duration_s: 1800, nodes: 10, partitions: [] }));
      const ok = io();
      const code = await main(['sim', file, '--strategy', 'flood', '--out', join(dir, 'out'), '--quiet'], ok);
      assert.equal(code, 0, ok.errors.join('\n'));
      for (const name of ['metrics.json', 'map.svg', 'delivery.svg', 'airtime.svg']) assert.ok(existsSync(join(dir, 'out', name)), name);
      assert.equal(JSON.parse(readFileSync(join(dir, 'out', 'metrics.json'), 'utf8')).seed, 3);
      assert.ok(ok.lines.some((l) => l.startsWith('flood ')), ok.lines.join('\n'));

      writeFileSync(file, JSON.stringify({ ...small, traffic: { until_s: -1 } }));
      const bad = io();
      assert.equal(await main(['sim', file, '--strategy', 'flood', '--out', join(dir, 'bad')], bad), 2);
      assert.equal(bad.errors.length, 1);
      assert.match(bad.errors[0]!, /traffic\.until_s/);

      writeFileSync(file, JSON.stringify({ name: 'huge', nodes: 300, duration_s: 86400, traffic: { chat_per_node_per_hour: 20 } }));
      const huge = io();
      assert.equal(await main(['sim', file, '--out', join(dir, 'huge')], huge), 2);
      assert.match(huge.errors[0]!, /huge would need about \d+ MiB/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
