/** Same scenario and seed → byte-identical metrics apart from wall_s; the CLI writes the SPEC §5 files. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
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

  it('citizen sim says so when the traffic fills the channel, and only then', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'citizen-sim-'));
    const capOf = (out: string) => JSON.parse(readFileSync(join(dir, out, 'metrics.json'), 'utf8')).strategies.flood.detail.nodes_at_duty_cap;
    try {
      const crowded = { name: 'crowded', nodes: 10, duration_s: 3600, area_m: [300, 300], churn: { offline_fraction: 0 }, traffic: { chat_per_node_per_hour: 120, dm_per_node_per_hour: 0, blog_per_node_per_day: 0 } };
      const full = await sim(dir, crowded, ['--strategy', 'flood', '--out', join(dir, 'full'), '--quiet']);
      assert.equal(full.code, 0, full.errors.join('\n'));
      assert.ok(full.out.some((l) => /^flood: 10 of 10 nodes used their whole airtime allowance in some hour/.test(l)), full.out.join('\n'));
      assert.equal(capOf('full'), 10);

      const calm = await sim(dir, { ...crowded, traffic: { chat_per_node_per_hour: 1 } }, ['--strategy', 'flood', '--out', join(dir, 'calm'), '--quiet']);
      assert.equal(calm.code, 0, calm.errors.join('\n'));
      assert.ok(!calm.out.some((l) => l.includes('airtime allowance')), calm.out.join('\n'));
      assert.equal(capOf('calm'), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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

  /** Run `citizen sim` on `scenario`; the exit code and what it printed. */
  async function sim(dir: string, scenario: unknown, flags: string[], text = JSON.stringify(scenario)): Promise<{ code: number; out: string[]; errors: string[] }> {
    const file = join(dir, 'scenario.json');
    writeFileSync(file, text);
    const streams = io();
    const code = await main(['sim', file, ...flags], streams);
    return { code, out: streams.lines, errors: streams.errors };
  }

  it('refuses a scenario too large for the heap at once, from the scenario alone, naming what to reduce', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'citizen-sim-'));
    try {
      // Building either world would take minutes and die in V8's out-of-memory trace.
      const started = Date.now();
      const chat = await sim(dir, { name: 'mem', nodes: 100, duration_s: 2_592_000, traffic: { chat_per_node_per_hour: 3600 } }, ['--out', join(dir, 'a')]);
      assert.equal(chat.code, 2);
      assert.equal(chat.errors.length, 1);
      assert.match(chat.errors[0]!, /^citizen sim: mem would need about \d+ MiB .* reduce the traffic/);
      const churn = await sim(dir, { name: 'flicker', nodes: 100, duration_s: 2_592_000, churn: { offline_fraction: 0.5, mean_offline_s: 1 } }, ['--strategy', 'flood', '--out', join(dir, 'b')]);
      assert.equal(churn.code, 2);
      assert.match(churn.errors[0]!, /flicker would need about \d+ MiB \(\d+ messages, \d+ churn toggles on 100 nodes\).* reduce the churn/);
      assert.ok(Date.now() - started < 5000, 'refused before building anything');
      assert.ok(!existsSync(join(dir, 'a')) && !existsSync(join(dir, 'b')), 'no output directory for a refused run');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--seed takes plain decimal digits only, however it is written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'citizen-sim-'));
    try {
      for (const flags of [['--seed', '-1'], ['--seed=-1'], ['--seed', '0x10'], ['--seed', '1e3'], ['--seed', ' 7'], ['--seed', '1.5'], ['--seed', '']]) {
        const r = await sim(dir, { ...small, nodes: 3, duration_s: 60 }, [...flags, '--strategy', 'flood', '--out', join(dir, 'out')]);
        assert.equal(r.code, 2, flags.join(' '));
        assert.deepEqual(r.errors, [`citizen sim: --seed must be a whole number ≥ 0, got "${flags.at(-1)!.replace('--seed=', '')}"`]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks --out before the run and refuses a place it cannot write with one line, exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'citizen-sim-'));
    try {
      const file = join(dir, 'a-file');
      writeFileSync(file, 'x');
      const cases: [string, RegExp][] = [
        [join(file, 'sub'), /a-file exists and is not a directory/],
        [file, /a-file exists and is not a directory/],
        ['', /give a directory/],
      ];
      if (existsSync('/proc/self')) cases.push(['/proc/nope/deeper', /cannot create \/proc\/nope/]);
      for (const [out, why] of cases) {
        const started = Date.now();
        const r = await sim(dir, small, ['--out', out, '--quiet']);
        assert.equal(r.code, 2, out);
        assert.equal(r.errors.length, 1, r.errors.join('\n'));
        assert.match(r.errors[0]!, /^citizen sim: --out "/);
        assert.match(r.errors[0]!, why);
        assert.ok(Date.now() - started < 5000, `${out}: refused before the run`);
      }
      const made = join(dir, 'new', 'deeper', 'out');
      const ok = await sim(dir, { ...small, nodes: 3, duration_s: 60, partitions: [] }, ['--strategy', 'flood', '--out', made]);
      assert.equal(ok.code, 0, ok.errors.join('\n'));
      assert.deepEqual(readdirSync(made).sort(), ['airtime.svg', 'delivery.svg', 'map.svg', 'metrics.json']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a scenario that starts with a byte order mark, and names the default directory safely', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'citizen-sim-'));
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      const r = await sim(dir, undefined, ['--strategy', 'flood'], '\uFEFF' + JSON.stringify({ ...small, name: '..', nodes: 3, duration_s: 60, partitions: [] }));
      assert.equal(r.code, 0, r.errors.join('\n'));
      assert.ok(!existsSync(join(dir, 'metrics.json')), 'nothing written beside sim-out/');
      assert.deepEqual(readdirSync(join(dir, 'sim-out')), ['_.']);
      assert.ok(existsSync(join(dir, 'sim-out', '_.', 'metrics.json')));
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('citizen help sim prints the sim help', async () => {
    const streams = io();
    assert.equal(await main(['help', 'sim'], streams), 0);
    assert.match(streams.lines.join('\n'), /^Usage: citizen sim SCENARIO\.json/);
  });
});
