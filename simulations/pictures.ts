/**
 * The pictures of a run, as standalone SVG (no scripts, no external fonts):
 * - `map.svg`: nodes where they stand, every link coloured by its margin above sensitivity,
 *   gateways ringed, each node shaded by the share of the run it was offline, partition cuts dashed;
 * - `delivery.svg`: delivery ratio over time, one line per strategy;
 * - `airtime.svg`: airtime per node per strategy against the duty-cycle budget.
 */
import { DEFAULT_SHARE_OF_LEGAL } from '../radio/duty-cycle.ts';
import type { StrategyResult } from './run.ts';
import type { World } from './world.ts';

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
const FONT = 'font-family="system-ui, sans-serif"';

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const f1 = (v: number) => (Math.round(v * 10) / 10).toString();

/** Link colour by margin above sensitivity, dB. */
function marginColour(margin: number): string {
  if (margin < 5) return '#e15759';
  if (margin < 10) return '#f28e2b';
  if (margin < 20) return '#edc948';
  return '#59a14f';
}

/** Share of the run node `i` spent offline. */
function offlineShare(world: World, i: number): number {
  let on = world.startsOnline[i] === 1;
  let last = 0;
  let off = 0;
  for (const t of world.toggles[i]!) {
    if (!on) off += t - last;
    last = t;
    on = !on;
  }
  if (!on) off += world.durationMs - last;
  return off / world.durationMs;
}

/**
 * The most links the map draws. A dense map can hold millions (5,000 nodes within earshot of
 * each other: 12.5 million), which took minutes to draw into an SVG no viewer opens, or ran
 * past the longest string V8 holds after the whole run; the strongest this many show the mesh.
 */
export const MAX_MAP_LINKS = 50_000;

export function mapSvg(world: World): string {
  const n = world.scenario.nodes;
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    minX = Math.min(minX, world.xs[i]!);
    maxX = Math.max(maxX, world.xs[i]!);
    minY = Math.min(minY, world.ys[i]!);
    maxY = Math.max(maxY, world.ys[i]!);
  }
  const span = Math.max(maxX - minX, maxY - minY, 1);
  const size = 760;
  const pad = 40;
  const scale = size / span;
  const px = (x: number) => pad + (x - minX) * scale;
  const py = (y: number) => pad + (y - minY) * scale;
  const height = pad * 2 + (maxY - minY) * scale + 90;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${size + 2 * pad}" height="${f1(height)}" viewBox="0 0 ${size + 2 * pad} ${f1(height)}" ${FONT}>`);
  parts.push(`<rect width="100%" height="100%" fill="#fbfbf8"/>`);
  parts.push(`<title>${esc(world.scenario.name)}: ${n} nodes</title>`);
  const { neighbours, rssi } = world.budget;
  /** Calls `visit` with every link heard above sensitivity, once per pair. */
  const eachLink = (visit: (i: number, j: number, margin: number) => void) => {
    for (let i = 0; i < n; i++) {
      const list = neighbours[i]!;
      for (let k = 0; k < list.length; k++) {
        const j = list[k]!;
        const margin = rssi[i]![k]! - world.sensitivityDbm;
        if (j > i && margin >= 0) visit(i, j, margin);
      }
    }
  };
  let total = 0;
  eachLink(() => total++);
  // Past the cap only the strongest links are drawn: the weakest margin that makes the cut.
  let floor = 0;
  if (total > MAX_MAP_LINKS) {
    const margins = new Float64Array(total);
    let k = 0;
    eachLink((_i, _j, margin) => (margins[k++] = margin));
    floor = margins.sort()[total - MAX_MAP_LINKS]!;
  }
  let links: { i: number; j: number; margin: number }[] = [];
  eachLink((i, j, margin) => margin >= floor && links.push({ i, j, margin }));
  // Weak links first, so the strong ones are drawn on top.
  links.sort((a, b) => a.margin - b.margin || a.i - b.i || a.j - b.j);
  if (links.length > MAX_MAP_LINKS) links = links.slice(links.length - MAX_MAP_LINKS);
  parts.push('<g stroke-width="1.2" stroke-opacity="0.75">');
  for (const { i, j, margin } of links) {
    parts.push(`<line x1="${f1(px(world.xs[i]!))}" y1="${f1(py(world.ys[i]!))}" x2="${f1(px(world.xs[j]!))}" y2="${f1(py(world.ys[j]!))}" stroke="${marginColour(margin)}"/>`);
  }
  parts.push('</g>');
  for (const cut of world.cuts) {
    // A cut far beyond every node separates nobody but is still drawn: at the map's edge, saying where it lies.
    const x = Math.min(Math.max(px(cut.x), pad / 2), size + pad * 1.5);
    const label = `cut ${f1(cut.fromMs / 1000)}–${f1(cut.untilMs / 1000)} s${x === px(cut.x) ? '' : ` (at x = ${f1(cut.x)} m, off the map)`}`;
    const right = x > size + pad;
    parts.push(`<line x1="${f1(x)}" y1="${pad / 2}" x2="${f1(x)}" y2="${f1(height - 80)}" stroke="#555" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${f1(right ? x - 4 : x + 4)}" y="${pad / 2 + 10}" font-size="11" fill="#555"${right ? ' text-anchor="end"' : ''}>${esc(label)}</text>`);
  }
  const gateways = new Set(world.scenario.gateways);
  const r = n > 200 ? 3 : n > 60 ? 4.5 : 6;
  for (let i = 0; i < n; i++) {
    const off = offlineShare(world, i);
    const shade = Math.round(40 + off * 180);
    const fill = `rgb(${shade},${shade},${Math.min(255, shade + 60)})`;
    const x = f1(px(world.xs[i]!));
    const y = f1(py(world.ys[i]!));
    if (gateways.has(i)) parts.push(`<circle cx="${x}" cy="${y}" r="${r + 4}" fill="none" stroke="#9467bd" stroke-width="2.5"/>`);
    parts.push(`<circle cx="${x}" cy="${y}" r="${r}" fill="${fill}" stroke="#222" stroke-width="0.8"><title>node ${i}: offline ${Math.round(off * 100)}% of the run</title></circle>`);
    if (n <= 60) parts.push(`<text x="${x}" y="${f1(py(world.ys[i]!) - r - 3)}" font-size="10" text-anchor="middle" fill="#333">${i}</text>`);
  }
  const ly = height - 65;
  const legend: [string, string][] = [['#e15759', '< 5 dB'], ['#f28e2b', '5–10 dB'], ['#edc948', '10–20 dB'], ['#59a14f', '≥ 20 dB']];
  parts.push(`<text x="${pad}" y="${f1(ly)}" font-size="12" fill="#222">link margin above sensitivity (${f1(world.sensitivityDbm)} dBm):</text>`);
  legend.forEach(([c, label], k) => {
    const x = pad + k * 110;
    parts.push(`<line x1="${x}" y1="${f1(ly + 16)}" x2="${x + 24}" y2="${f1(ly + 16)}" stroke="${c}" stroke-width="3"/><text x="${x + 30}" y="${f1(ly + 20)}" font-size="12">${esc(label)}</text>`);
  });
  const drawn = links.length < total ? ` · the strongest ${links.length} of ${total} links drawn` : '';
  parts.push(`<text x="${pad}" y="${f1(ly + 40)}" font-size="12">node shade: lighter = offline longer · ring = gateway · ${f1(span)} m across${drawn}</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

interface Frame {
  w: number;
  h: number;
  left: number;
  top: number;
  pw: number;
  ph: number;
}

/** An x-axis tick: where it stands as a share of the plot's width, and its label. */
interface Tick {
  at: number;
  label: string;
}

/**
 * Ticks from 0 to `xMax`: at every sixth when a sixth is a whole number (6 h, 24 h, 3600 s),
 * else a 1-2-5 step apart (at most about seven), so each label is a round number standing
 * where it says: sixths of 1 s or 1800.5 s would be labelled 0.2, 0.3 or 300.1, or all 0.
 */
function evenTicks(xMax: number): Tick[] {
  if (Number.isInteger(xMax / 6)) return Array.from({ length: 7 }, (_, k) => ({ at: k / 6, label: String((xMax * k) / 6) }));
  const step = niceCeiling(xMax / 6);
  const ticks: Tick[] = [];
  // toPrecision drops the binary fraction's noise (3 × 0.1 is 0.30000000000000004).
  for (let k = 0; k * step <= xMax * (1 + 1e-9); k++) ticks.push({ at: (k * step) / xMax, label: String(Number((k * step).toPrecision(12))) });
  return ticks;
}

/**
 * Ticks under the bars of nodes 0…n−1 (bar i spans [i, i+1) of n): whole node indices, a
 * 1-2-5 step apart, at most about seven, each under the middle of its node's bars.
 */
function nodeTicks(n: number): Tick[] {
  const step = n <= 7 ? 1 : niceCeiling((n - 1) / 6);
  const ticks: Tick[] = [];
  for (let i = 0; i < n; i += step) ticks.push({ at: (i + 0.5) / n, label: String(i) });
  return ticks;
}

function axes(frame: Frame, title: string, xLabel: string, yLabel: string, xTicks: readonly Tick[], yMax: number, yFormat: (v: number) => string): string[] {
  const { left, top, pw, ph } = frame;
  const out: string[] = [];
  out.push(`<text x="${left}" y="${top - 14}" font-size="15" font-weight="600">${esc(title)}</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (let k = 0; k <= 5; k++) {
    const y = top + ph - (ph * k) / 5;
    out.push(`<line x1="${left}" y1="${f1(y)}" x2="${left + pw}" y2="${f1(y)}" stroke="#eee"/>`);
    out.push(`<text x="${left - 6}" y="${f1(y + 4)}" font-size="11" text-anchor="end">${yFormat((yMax * k) / 5)}</text>`);
  }
  for (const tick of xTicks) {
    out.push(`<text x="${f1(left + pw * tick.at)}" y="${top + ph + 16}" font-size="11" text-anchor="middle">${esc(tick.label)}</text>`);
  }
  out.push(`<text x="${left + pw / 2}" y="${top + ph + 36}" font-size="12" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text x="14" y="${top + ph / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${top + ph / 2})">${esc(yLabel)}</text>`);
  return out;
}

function legendOf(results: readonly StrategyResult[], frame: Frame, label: (r: StrategyResult) => string): string[] {
  return results.map((r, k) => {
    const x = frame.left + frame.pw - 210;
    const y = frame.top + 18 + k * 18;
    return `<rect x="${x - 4}" y="${y - 13}" width="210" height="18" fill="#fff" fill-opacity="0.85"/><line x1="${x}" y1="${y - 4}" x2="${x + 24}" y2="${y - 4}" stroke="${COLOURS[k % COLOURS.length]}" stroke-width="3"/><text x="${x + 30}" y="${y}" font-size="12">${esc(label(r))}</text>`;
  });
}

/** The smallest 1-2-5 step ceiling at or above `v`, so axes have round ticks. */
function niceCeiling(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function deliverySvg(world: World, results: readonly StrategyResult[]): string {
  const frame: Frame = { w: 800, h: 420, left: 60, top: 40, pw: 700, ph: 320 };
  const hours = world.durationMs / 3_600_000;
  const useHours = hours >= 3;
  const xMax = useHours ? hours : world.durationMs / 1000;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${frame.w}" height="${frame.h}" viewBox="0 0 ${frame.w} ${frame.h}" ${FONT}>`, `<rect width="100%" height="100%" fill="#fff"/>`];
  parts.push(...axes(frame, `${world.scenario.name}: delivery ratio over time`, useHours ? 'time (h)' : 'time (s)', 'delivered / expected so far', evenTicks(xMax), 1, (v) => `${Math.round(v * 100)}%`));
  for (const cut of world.cuts) {
    const x0 = frame.left + (frame.pw * cut.fromMs) / world.durationMs;
    const x1 = frame.left + (frame.pw * cut.untilMs) / world.durationMs;
    parts.push(`<rect x="${f1(x0)}" y="${frame.top}" width="${f1(x1 - x0)}" height="${frame.ph}" fill="#999" fill-opacity="0.15"/><text x="${f1(x0 + 4)}" y="${frame.top + 14}" font-size="11" fill="#666">partition</text>`);
  }
  const untilX = frame.left + (frame.pw * world.scenario.traffic.until_s * 1000) / world.durationMs;
  parts.push(`<line x1="${f1(untilX)}" y1="${frame.top}" x2="${f1(untilX)}" y2="${frame.top + frame.ph}" stroke="#888" stroke-dasharray="4 4"/><text x="${f1(untilX - 4)}" y="${frame.top + frame.ph - 6}" font-size="11" text-anchor="end" fill="#666">traffic stops</text>`);
  results.forEach((r, k) => {
    const points = r.timeline.map((p) => `${f1(frame.left + (frame.pw * p.t_s * 1000) / world.durationMs)},${f1(frame.top + frame.ph * (1 - p.ratio))}`);
    parts.push(`<polyline fill="none" stroke="${COLOURS[k % COLOURS.length]}" stroke-width="2" points="${points.join(' ')}"/>`);
  });
  parts.push(...legendOf(results, frame, (r) => `${r.name}: ${(r.metrics.delivery_ratio * 100).toFixed(1)}% delivered`), '</svg>');
  return parts.join('\n') + '\n';
}

export function airtimeSvg(world: World, results: readonly StrategyResult[]): string {
  const frame: Frame = { w: 800, h: 420, left: 60, top: 40, pw: 700, ph: 320 };
  const n = world.scenario.nodes;
  const budgetS = (world.radio.limits.dutyCycle * DEFAULT_SHARE_OF_LEGAL * world.durationMs) / 1000;
  const top = niceCeiling(Math.max(1, ...results.flatMap((r) => r.airtimeByNode)) * 1.05);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${frame.w}" height="${frame.h}" viewBox="0 0 ${frame.w} ${frame.h}" ${FONT}>`, `<rect width="100%" height="100%" fill="#fff"/>`];
  parts.push(...axes(frame, `${world.scenario.name}: airtime per node over the run`, 'node', 'airtime (s)', nodeTicks(n), top, (v) => f1(v)));
  const slot = frame.pw / n;
  const barW = Math.max(0.5, (slot * 0.9) / results.length);
  results.forEach((r, k) => {
    r.airtimeByNode.forEach((a, i) => {
      const h = (frame.ph * a) / top;
      parts.push(`<rect x="${f1(frame.left + i * slot + k * barW)}" y="${f1(frame.top + frame.ph - h)}" width="${f1(barW)}" height="${f1(h)}" fill="${COLOURS[k % COLOURS.length]}"/>`);
    });
  });
  if (budgetS < top) {
    const y = frame.top + frame.ph * (1 - budgetS / top);
    parts.push(`<line x1="${frame.left}" y1="${f1(y)}" x2="${frame.left + frame.pw}" y2="${f1(y)}" stroke="#000" stroke-dasharray="5 3"/><text x="${frame.left + 4}" y="${f1(y - 4)}" font-size="11">duty-cycle budget over the run (half of ${world.radio.limits.dutyCycle * 100}%)</text>`);
  }
  parts.push(...legendOf(results, frame, (r) => `${r.name}: ${Math.round(r.metrics.airtime_s)} s in all`), '</svg>');
  return parts.join('\n') + '\n';
}
