/**
 * GET /metrics read the way Prometheus reads it: a strict parser of the text exposition format
 * 0.0.4 (metric and label names, escaped label values, numbers, one TYPE and HELP per family
 * before its samples, families not interleaved, no series twice) over renderMetrics with awkward
 * link specs, and over a real node's answer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from '../../apps/daemon/daemon.ts';
import { DataDir } from '../../apps/daemon/data-dir.ts';
import { renderMetrics } from '../../apps/daemon/metrics.ts';
import type { StatusView } from '../../apps/daemon/services.ts';
import type { MeshNode } from '../../mesh/node.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NUMBER = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|NaN|[+-]Inf)$/;

/** Parse exposition text strictly; throws on the first thing Prometheus would refuse or misread. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string>; helps: Map<string, string> } {
  assert.ok(text.endsWith('\n'), 'the text ends with a newline');
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const samples: Sample[] = [];
  const series = new Set<string>();
  const finished = new Set<string>(); // families whose samples are over
  let current: string | null = null;
  const familyOf = (name: string) => {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && types.has(base)) return base;
    }
    return name;
  };
  const enter = (family: string, line: string) => {
    if (current === family) return;
    assert.ok(!finished.has(family), `family ${family} is interleaved with another: ${line}`);
    if (current !== null) finished.add(current);
    current = family;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!meta) continue; // a plain comment
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      assert.match(name, METRIC_NAME, `metric name in: ${line}`);
      enter(name, line);
      if (kind === 'TYPE') {
        assert.ok(!types.has(name), `a second TYPE for ${name}`);
        assert.ok(!samples.some((s) => familyOf(s.name) === name), `TYPE after samples of ${name}`);
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest), `type in: ${line}`);
        types.set(name, rest);
      } else {
        assert.ok(!helps.has(name), `a second HELP for ${name}`);
        assert.doesNotMatch(rest.replace(/\\[\\n]/g, ''), /\\/, `HELP escapes only \\\\ and \\n: ${line}`);
        helps.set(name, rest);
      }
      continue;
    }
    const m = /^([^{\s]+)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
    const [, name, labelText, value] = m as unknown as [string, string, string | undefined, string];
    assert.match(name, METRIC_NAME, `metric name in: ${line}`);
    assert.match(value, NUMBER, `value in: ${line}`);
    enter(familyOf(name), line);
    const labels: Record<string, string> = {};
    let rest = labelText ?? '';
    while (rest !== '') {
      const l = /^([^=,"\s]+)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/.exec(rest);
      assert.ok(l, `labels in: ${line}`);
      const [whole, labelName, raw, comma] = l as unknown as [string, string, string, string];
      assert.match(labelName, LABEL_NAME, `label name in: ${line}`);
      assert.ok(!labelName.startsWith('__'), `reserved label name in: ${line}`);
      assert.ok(!(labelName in labels), `label ${labelName} twice in: ${line}`);
      labels[labelName] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(whole.length);
      if (comma === '' && rest !== '') assert.fail(`labels in: ${line}`);
    }
    const key = `${name}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
    assert.ok(!series.has(key), `the series ${key} twice`);
    series.add(key);
    samples.push({ name, labels, value: value === '+Inf' ? Infinity : value === '-Inf' ? -Infinity : Number(value) });
  }
  return { samples, types, helps };
}

type Link = StatusView['links'][number] & { bytes_out?: number; bytes_in?: number; dropped?: Record<string, number> };

function link(spec: string, n: number, dropped: Record<string, number> = {}): Link {
  return { spec, up: true, neighbours: n, frames_out: 10 * n, frames_in: n, airtime_ms: 1.5 * n, bytes_out: 100 * n, bytes_in: 20 * n, dropped };
}

describe('GET /metrics in the Prometheus text format (strict parse)', function () {
  this.timeout(60_000);

  it('parses strictly with awkward link specs, and keeps a series per link when two links have the same spec', () => {
    const node = { pendingCount: 2, rejected: new Map([['bad-signature', 3], ['we"ird\\reason\n', 1]]) } as unknown as MeshNode;
    const status: StatusView = {
      household: 'rose',
      node_id: 'ab',
      fingerprint: 'fp',
      records: 7,
      households_known: 2,
      p2p: null,
      sync_queue: 4,
      links: [
        link('meshtastic+tcp://127.0.0.1:4403', 1, { 'record-duplicate': 5 }),
        link('meshtastic+tcp://127.0.0.1:4403', 2, { 'record-duplicate': 6 }),
        link('udp://127.0.0.1:7001?peer=127.0.0.1:7002&preset=LongFast', 3),
        link('odd "spec" \\ with\nnewline', 4),
      ],
    };
    const { samples, types } = parseExposition(renderMetrics(node, status));
    const of = (name: string) => samples.filter((s) => s.name === name);
    assert.deepEqual(
      of('citizen_link_frames_sent_total').map((s) => [s.labels.link, s.value]),
      [
        ['meshtastic+tcp://127.0.0.1:4403', 10],
        ['meshtastic+tcp://127.0.0.1:4403#2', 20],
        ['udp://127.0.0.1:7001?peer=127.0.0.1:7002&preset=LongFast', 30],
        ['odd "spec" \\ with\nnewline', 40],
      ],
    );
    assert.deepEqual(
      of('citizen_link_dropped_total').map((s) => [s.labels.link, s.labels.reason, s.value]),
      [
        ['meshtastic+tcp://127.0.0.1:4403', 'record-duplicate', 5],
        ['meshtastic+tcp://127.0.0.1:4403#2', 'record-duplicate', 6],
      ],
    );
    assert.deepEqual(of('citizen_records_rejected_total').map((s) => s.labels.reason), ['bad-signature', 'we"ird\\reason\n']);
    assert.equal(of('citizen_records_stored')[0]?.value, 7);
    assert.equal(of('citizen_sync_queue_length')[0]?.value, 4);
    for (const [name, type] of types) if (type === 'counter') assert.match(name, /_total$/, `counter ${name}`);
  });

  it('serves a real node\'s metrics (records, frames and bytes per link, airtime, queue) in the same strict format', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'citizen-metrics-'));
    new DataDir(dir).init('rose');
    const daemon = await startDaemon({ dataDir: dir, portal: { host: '127.0.0.1', port: 0 }, links: ['udp://127.0.0.1:0?peer=127.0.0.1:9&preset=LongFast'] });
    try {
      const res = await fetch(`${daemon.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const { samples, types, helps } = parseExposition(await res.text());
      for (const name of ['citizen_records_stored', 'citizen_link_frames_sent_total', 'citizen_link_frames_received_total', 'citizen_link_bytes_sent_total', 'citizen_link_bytes_received_total', 'citizen_link_airtime_ms_total', 'citizen_sync_queue_length']) {
        assert.ok(types.has(name) && helps.has(name), `${name} has TYPE and HELP`);
      }
      assert.ok((samples.find((s) => s.name === 'citizen_records_stored')?.value ?? 0) >= 1);
      assert.equal(samples.filter((s) => s.name === 'citizen_link_frames_sent_total').length, 1);
    } finally {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
