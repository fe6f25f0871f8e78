/**
 * Scenario files as an outsider writes them from SPEC §5 alone: edge cases that must run with
 * sound metrics, and mistakes that must be refused in one line naming what is wrong.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliverySvg, mapSvg, MAX_MAP_LINKS } from '../../simulations/pictures.ts';
import { metricsJson, runScenario } from '../../simulations/run.ts';
import { parseScenario } from '../../simulations/scenario.ts';
import { citizenInProcess } from '../helpers/cli-in-process.ts';
import { quietWorld } from './helpers.ts';

const SPEC_FIELDS = ['messages', 'expected', 'delivered', 'delivery_ratio', 'latency_s', 'frames', 'bytes_on_air', 'airtime_s', 'airtime_per_delivery_ms', 'max_duty_cycle', 'duty_cycle_violations', 'collisions'];

/** The SPEC §5 figures of a flood run of `input`, checked against what any run must satisfy. */
async function floodFigures(input: Record<string, unknown>) {
  const text = metricsJson(await runScenario(parseScenario(input), { strategies: ['flood'] }));
  assert.doesNotMatch(text, /NaN|Infinity|null/);
  const m = JSON.parse(text).strategies.flood;
  for (const field of SPEC_FIELDS) assert.ok(field in m, field);
  assert.ok(m.delivered <= m.expected);
  assert.ok(m.latency_s.p50 <= m.latency_s.p90 && m.latency_s.p90 <= m.latency_s.p99 && m.latency_s.p99 <= m.latency_s.max);
  assert.ok(m.max_duty_cycle >= 0 && m.max_duty_cycle <= 1);
  assert.equal(m.duty_cycle_violations, 0);
  return m;
}

describe('simulations/outside scenarios', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'citizen-outside-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** `citizen sim` on a file holding `text`; the run's exit code and its lines. */
  async function simText(text: string, ...flags: string[]) {
    const file = join(dir, 'scenario.json');
    writeFileSync(file, text);
    return citizenInProcess('sim', file, '--quiet', '--out', join(dir, 'out'), ...flags);
  }

  it('refuses a file with comments saying JSON has none, with the line and column', async () => {
    const cases: [string, string][] = [
      ['{\n  // ten households\n  "name": "c", "nodes": 3, "duration_s": 60\n}\n', 'line 2, column 3'],
      ['// ten households\n{"name": "c", "nodes": 3, "duration_s": 60}', 'line 1, column 1'],
      ['{"name": "c", /* three */ "nodes": 3, "duration_s": 60}', 'line 1, column 15'],
      ['{"name": "c", "nodes": 3, // three\n "duration_s": 60}', 'line 1, column 27'],
      ['\uFEFF{"name": "c", "nodes": 3, // three\n "duration_s": 60}', 'line 1, column 27'],
    ];
    for (const [text, where] of cases) {
      const r = await simText(text);
      assert.equal(r.code, 2);
      assert.deepEqual(r.err, [`citizen sim: ${join(dir, 'scenario.json')} is not valid JSON: JSON has no comments; remove the one at ${where}`]);
    }
    // A '//' inside a string is no comment: the trailing comma is what is wrong.
    const url = await simText('{"name": "http://x", "nodes": 3, "duration_s": 60,}');
    assert.match(url.err[0]!, /is not valid JSON: Expected double-quoted property name at line 1, column 51$/);
  });

  it('keeps every other JSON refusal on one readable line: no raw newline or control character of the file', async () => {
    const yaml = await simText('name: x\nnodes: 3\n');
    assert.equal(yaml.code, 2);
    assert.equal(yaml.err.length, 1);
    assert.match(yaml.err[0]!, /is not valid JSON: Unexpected token 'a', "name: x\\nnodes: 3\\n" is not valid JSON$/);
    const binary = await simText('\u0000\u0001');
    assert.match(binary.err[0]!, /is not valid JSON: Unexpected token '\\u0000', "\\u0000\\u0001" is not valid JSON$/);
    for (const empty of ['', ' \n\t']) {
      const r = await simText(empty);
      assert.equal(r.code, 2);
      assert.match(r.err[0]!, /is not valid JSON: the file is empty$/);
    }
  });

  it('says a UTF-16 file (what PowerShell 5 writes with >) is UTF-16, not that it is not JSON', async () => {
    const json = JSON.stringify({ name: 'x', nodes: 3, duration_s: 60 });
    for (const [bom, encoded] of [[[0xff, 0xfe], Buffer.from(json, 'utf16le')], [[0xfe, 0xff], Buffer.from(json, 'utf16le').swap16()]] as const) {
      const file = join(dir, 'utf16.json');
      writeFileSync(file, Buffer.concat([Buffer.from(bom), encoded]));
      const r = await citizenInProcess('sim', file, '--quiet');
      assert.equal(r.code, 2);
      assert.deepEqual(r.err, [`citizen sim: ${file} is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8`]);
    }
  });

  it('says in words why the scenario file cannot be read', async () => {
    const missing = await citizenInProcess('sim', join(dir, 'nope.json'), '--quiet');
    assert.equal(missing.code, 2);
    assert.deepEqual(missing.err, [`citizen sim: cannot read ${join(dir, 'nope.json')}: no such file or directory (ENOENT)`]);
    const directory = await citizenInProcess('sim', dir, '--quiet');
    assert.deepEqual(directory.err, [`citizen sim: cannot read ${dir}: it is a directory (EISDIR)`]);
    if (existsSync('/proc/self')) {
      const proc = await simText(JSON.stringify({ name: 'x', nodes: 3, duration_s: 60 }), '--out', '/proc/nope/deeper');
      assert.deepEqual(proc.err.slice(-1), ['citizen sim: --out "/proc/nope/deeper": cannot create /proc/nope: no such file or directory (ENOENT)']);
    }
  });

  it('refuses, before the run, an --out where a directory stands in place of an output file', async () => {
    mkdirSync(join(dir, 'out', 'delivery.svg'), { recursive: true });
    const started = Date.now();
    const r = await simText(JSON.stringify({ name: 'x', nodes: 3, duration_s: 600 }), '--strategy', 'flood');
    assert.equal(r.code, 2);
    assert.deepEqual(r.err, [`citizen sim: --out "${join(dir, 'out')}": ${join(dir, 'out', 'delivery.svg')} is a directory; the run writes a file there`]);
    assert.ok(Date.now() - started < 2000, 'refused before the run');
  });

  it('runs empty bodies (body_bytes [0, 0]): an empty message is still a message', async () => {
    const m = await floodFigures({ name: 'empty', nodes: 3, duration_s: 1800, placement: 'line', spacing_m: 300, traffic: { body_bytes: [0, 0], chat_per_node_per_hour: 4 } });
    assert.ok(m.messages > 0);
    assert.ok(m.delivered > 0);
    assert.throws(() => parseScenario({ name: 'x', nodes: 3, duration_s: 60, traffic: { body_bytes: [-1, 0] } }), /^SimError: traffic\.body_bytes\[0\]: must be at least 0, got -1$/);
  });

  it('takes any churn.offline_fraction below 1, and refuses 1 naming the field', async () => {
    const m = await floodFigures({ name: 'dark', nodes: 6, duration_s: 3600, churn: { offline_fraction: 0.99, mean_offline_s: 600 } });
    assert.ok(m.expected >= 0);
    assert.throws(() => parseScenario({ name: 'x', nodes: 3, duration_s: 60, churn: { offline_fraction: 1 } }), /^SimError: churn\.offline_fraction: must be less than 1, got 1$/);
  });

  it('names a number too large to hold as such, not as the null JSON.stringify makes of it', async () => {
    const r = await simText('{"name": "x", "duration_s": 60, "nodes": 3, "positions": [[0, 1e400], [0, 0], [1, -1e999]]}');
    assert.equal(r.code, 2);
    assert.deepEqual(r.err, ['citizen sim: positions[0][1]: must be a finite number, got one too large to hold (Infinity)']);
    assert.throws(() => parseScenario({ name: 'x', nodes: 3, duration_s: -Infinity }), /^SimError: duration_s: must be a finite number, got one too large to hold \(-Infinity\)$/);
    assert.throws(() => parseScenario({ name: 'x', nodes: 3, duration_s: null }), /^SimError: duration_s: must be a number, got null$/);
  });

  it('says a missing name is required, as it does of nodes and duration_s', () => {
    assert.throws(() => parseScenario({ nodes: 3, duration_s: 60 }), /^SimError: name: is required$/);
    assert.throws(() => parseScenario({ name: 7, nodes: 3, duration_s: 60 }), /^SimError: name: must be a non-empty string of at most 100 characters$/);
  });

  it('tells a scenario naming VeryLongSlow that Meshtastic removed it', () => {
    for (const preset of ['VeryLongSlow', 'VERY_LONG_SLOW', 'very-long-slow']) {
      assert.throws(() => parseScenario({ name: 'x', nodes: 3, duration_s: 60, radio: { preset } }), /^SimError: radio\.preset: unknown preset .* \(VeryLongSlow \(SF12, 62\.5 kHz\) was deprecated in Meshtastic 2\.5 and removed from its firmware; the slowest preset here is LongSlow\)$/);
    }
    assert.throws(() => parseScenario({ name: 'x', nodes: 3, duration_s: 60, radio: { preset: 'Fastest' } }), (err: Error) => !err.message.includes('deprecated'));
  });

  it('documents every default in citizen sim --help', async () => {
    const r = await citizenInProcess('sim', '--help');
    assert.equal(r.code, 0);
    const help = r.out.join('\n');
    for (const text of ['seed 1', 'placement "random"', 'area_m [3000, 3000]', 'spacing_m 500', 'region "EU868"', 'preset "LongFast"', 'tx_power_dbm 20', 'shadowing_db 3.57', 'offline_fraction 0', 'mean_offline_s 7200', 'dm_per_node_per_hour 0.5', 'chat_per_node_per_hour 1', 'blog_per_node_per_day 0.2', 'body_bytes [40, 300]', 'until_s 90% of duration_s', 'partitions: none']) {
      assert.ok(help.includes(text), text);
    }
    const overview = await citizenInProcess('--help');
    assert.ok(overview.out.join('\n').includes('sim   ') && !overview.out.join('\n').includes('offline_fraction'), 'the overview keeps the first sentence');
  });

  it('labels the time axis of the delivery chart with round numbers standing where they say, whatever the duration', async () => {
    const labels = async (duration_s: number) => {
      const result = await runScenario(parseScenario({ name: 'ticks', nodes: 2, duration_s, traffic: { until_s: 0 } }), { strategies: ['flood'] });
      const svg = deliverySvg(result.world, result.results);
      return [...svg.matchAll(/<text x="([0-9.]+)" y="376"[^>]*>([^<]*)<\/text>/g)].map((m) => [Number(m[1]), m[2]!] as const);
    };
    const cases: [number, string[]][] = [
      [1, ['0', '0.2', '0.4', '0.6', '0.8', '1']],
      [0.001, ['0', '0.0002', '0.0004', '0.0006', '0.0008', '0.001']],
      [1800.5, ['0', '500', '1000', '1500']],
      [5 * 3600, ['0', '1', '2', '3', '4', '5']],
      [86_400, ['0', '4', '8', '12', '16', '20', '24']],
    ];
    for (const [duration, expected] of cases) {
      const ticks = await labels(duration);
      assert.deepEqual(ticks.map(([, label]) => label), expected, `${duration} s`);
      const xMax = duration >= 3 * 3600 ? duration / 3600 : duration;
      // The plot spans x = 60 … 760: each label stands where its value lies.
      for (const [x, label] of ticks) assert.ok(Math.abs(x - (60 + (700 * Number(label)) / xMax)) < 0.1, `${label} at ${x} of ${duration} s`);
    }
  });

  it('draws at most MAX_MAP_LINKS links on the map, the strongest, and says so', () => {
    // 400 households within earshot of each other: 79,800 links (5,000 would be 12.5 million).
    const crowd = quietWorld(Array.from({ length: 400 }, (_, i) => [i % 20, Math.floor(i / 20)] as [number, number]));
    const svg = mapSvg(crowd);
    const lines = [...svg.matchAll(/<line x1="[^"]*" y1="[^"]*" x2="[^"]*" y2="[^"]*" stroke="#[0-9a-f]{6}"\/>/g)];
    assert.equal(lines.length, MAX_MAP_LINKS);
    assert.match(svg, /the strongest 50000 of 79800 links drawn/);
    const few = mapSvg(quietWorld([[0, 0], [200, 0], [400, 0]]));
    assert.equal([...few.matchAll(/<line x1="[^"]*" y1="[^"]*" x2="[^"]*" y2="[^"]*" stroke="#[0-9a-f]{6}"\/>/g)].length, 3);
    assert.doesNotMatch(few, /strongest/);
  });

  it('gives sound figures where nothing can arrive: one node, nodes out of range, no traffic', async () => {
    // A chat or blog message is expected at every node, its author's too (SPEC §5), which holds it at once.
    const one = await floodFigures({ name: 'alone', nodes: 1, duration_s: 3600, traffic: { dm_per_node_per_hour: 0 } });
    assert.ok(one.messages > 0);
    assert.deepEqual([one.expected, one.delivered, one.delivery_ratio, one.latency_s.max], [one.messages, one.messages, 1, 0]);
    const far = await floodFigures({ name: 'far', nodes: 3, duration_s: 3600, placement: 'line', spacing_m: 50_000, traffic: { dm_per_node_per_hour: 0 } });
    assert.ok(far.messages > 0);
    assert.deepEqual([far.expected, far.delivered, far.delivery_ratio, far.latency_s.max], [3 * far.messages, far.messages, 0.3333, 0]);
    const farDms = await floodFigures({ name: 'far', nodes: 3, duration_s: 3600, placement: 'line', spacing_m: 50_000, traffic: { chat_per_node_per_hour: 0, blog_per_node_per_day: 0 } });
    assert.ok(farDms.expected > 0);
    assert.deepEqual([farDms.delivered, farDms.delivery_ratio, farDms.airtime_per_delivery_ms, farDms.latency_s.max], [0, 0, 0, 0]);
    const quiet = await floodFigures({ name: 'quiet', nodes: 4, duration_s: 600, traffic: { until_s: 0 } });
    assert.deepEqual([quiet.messages, quiet.expected, quiet.frames], [0, 0, 0]);
  });
});
