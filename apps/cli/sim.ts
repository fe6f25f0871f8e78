/**
 * `citizen sim SCENARIO.json [--out DIR] [--seed N] [--strategy citizen|flood] [--compare flood] [--quiet]`
 * (SPEC §2, §5): run the network simulator, write DIR/metrics.json and the pictures, show a
 * progress bar on a terminal and a summary table at the end.
 */
import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { SimError } from '../../simulations/errors.ts';
import { airtimeSvg, deliverySvg, mapSvg } from '../../simulations/pictures.ts';
import { metricsJson, runScenario, STRATEGY_NAMES, type SimResult } from '../../simulations/run.ts';
import { nameSlug, parseScenario, type Scenario } from '../../simulations/scenario.ts';
import { estimateMemory } from '../../simulations/world.ts';
import { AppError } from '../errors.ts';
import { fsReason } from '../daemon/data-dir.ts';
import { stringOption, type Command, type Io } from './command.ts';

function strategyName(value: string | undefined, flag: string, fallback: string): string {
  const name = value ?? fallback;
  if (!(STRATEGY_NAMES as readonly string[]).includes(name)) {
    throw new AppError('USAGE', `${flag} must be one of ${STRATEGY_NAMES.join(', ')}, got "${name}"`, 2);
  }
  return name;
}

/** `--seed`: plain decimal digits only (no sign, exponent, hex or spaces), a safe integer. */
export function parseSeed(text: string): number {
  const seed = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(seed)) throw new AppError('USAGE', `--seed must be a whole number ≥ 0, got "${text}"`, 2);
  return seed;
}

/** Line and column, from 1, of character `index` of `text`. */
function lineColumn(text: string, index: number): string {
  const lines = text.slice(0, index).split('\n');
  return `line ${lines.length}, column ${lines.at(-1)!.length + 1}`;
}

/** The first '/' outside a JSON string, or -1: never valid JSON, and where a comment would start. */
function firstSlash(text: string): number {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '/') return i;
  }
  return -1;
}

/** Control characters as escapes, so a message quoting the file stays on one readable line. */
function visible(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => ({ '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Why `text` is not JSON, in one line: an empty file says so, a comment (people write them;
 * JSON has none) is named with its line and column, and V8's "at position N" becomes a line
 * and column. Other messages of V8 quote the file itself, control characters escaped.
 */
export function jsonProblem(text: string, error: Error): string {
  if (text.trim() === '') return 'the file is empty';
  const at = /^(.*) in JSON at position (\d+)/s.exec(error.message);
  const slash = firstSlash(text);
  const isComment = slash >= 0 && (text[slash + 1] === '/' || text[slash + 1] === '*');
  if (isComment && (at ? Number(at[2]) === slash : error.message.startsWith("Unexpected token '/'"))) {
    return `JSON has no comments; remove the one at ${lineColumn(text, slash)}`;
  }
  if (at) return `${at[1]} at ${lineColumn(text, Number(at[2]))}`;
  return visible(error.message);
}

/** A file system error in words, its code after them. */
function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === undefined ? fsReason(err) : `${fsReason(err)} (${code})`;
}

function refuseOut(out: string, why: string, cause?: unknown): never {
  throw new AppError('OUT_INVALID', `--out ${JSON.stringify(out)}: ${why}`, 2, { cause });
}

/** What a run writes into its --out directory. */
const OUTPUT_FILES = ['metrics.json', 'map.svg', 'delivery.svg', 'airtime.svg'] as const;

/**
 * Make sure `out` is a directory the run can write into, before the run: walk up to the first
 * ancestor that exists (it must be a directory), create each missing level with a plain
 * (non-recursive) mkdir — a recursive one loops forever under /proc — and try writing a file.
 */
export async function prepareOutDir(out: string): Promise<void> {
  if (out.trim() === '') refuseOut(out, 'give a directory for metrics.json and the pictures');
  const missing: string[] = [];
  let at = resolve(out);
  for (;;) {
    try {
      if (!(await stat(at)).isDirectory()) refuseOut(out, `${at} exists and is not a directory`);
      break;
    } catch (err) {
      if (err instanceof AppError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: some ancestor is a file, which the walk up reaches and names.
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(at) === at) refuseOut(out, `cannot use ${at}: ${fileProblem(err)}`, err);
      missing.unshift(at);
      at = dirname(at);
    }
  }
  for (const dir of missing) {
    try {
      await mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') refuseOut(out, `cannot create ${dir}: ${fileProblem(err)}`, err);
    }
  }
  for (const name of OUTPUT_FILES) {
    const path = join(out, name);
    // A directory in a picture's place would fail the run only at its end, after the work.
    if ((await stat(path).catch(() => null))?.isDirectory()) refuseOut(out, `${resolve(path)} is a directory; the run writes a file there`);
  }
  const probe = join(out, `.citizen-sim-${process.pid}.tmp`);
  try {
    await writeFile(probe, '', { flag: 'wx' });
    await unlink(probe);
  } catch (err) {
    refuseOut(out, `cannot write into ${resolve(out)}: ${fileProblem(err)}`, err);
  }
}

/** Refuse, before anything is built, a run whose estimated memory the V8 heap cannot hold. */
function checkMemory(scenario: Scenario, strategies: readonly string[]): void {
  const need = estimateMemory(scenario, strategies);
  const limit = getHeapStatistics().heap_size_limit;
  // The rest of the heap is V8's room to collect garbage in.
  if (need.bytes <= limit * 0.8) return;
  const MiB = 2 ** 20;
  const heap = Math.ceil(need.bytes / 0.8 / MiB);
  // A bigger heap helps only while the machine has the memory behind it.
  const raise = heap * MiB < totalmem() ? `, or raise the heap (NODE_OPTIONS=--max-old-space-size=${heap})` : '';
  throw new SimError(
    'SCENARIO_TOO_LARGE',
    `${scenario.name} would need about ${Math.ceil(need.bytes / MiB)} MiB (${Math.round(need.messages)} messages, ${Math.round(need.toggles)} churn toggles on ${scenario.nodes} nodes), more than 80% of the ${Math.floor(limit / MiB)} MiB heap; ` +
      `reduce ${need.largest}${raise}`,
  );
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
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), ...channelFullNotes(result)];
}

/**
 * A plain word when a strategy's traffic filled the channel: a tenth or more of the nodes
 * spent their whole airtime allowance in some hour (`nodes_at_duty_cap`).
 */
function channelFullNotes(result: SimResult): string[] {
  const nodes = result.world.scenario.nodes;
  return result.results.flatMap((r) => {
    const full = r.detail.nodes_at_duty_cap ?? 0;
    if (full === 0 || full < nodes / 10) return [];
    return [
      `${r.name}: ${full} of ${nodes} nodes used their whole airtime allowance in some hour — this traffic asks more than one ${result.world.radio.preset.name} channel carries (fewer or smaller messages, a faster preset or a second channel would carry more)`,
    ];
  });
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
  // The overview shows the first sentence; `citizen sim --help` all of it, the scenario's fields too.
  summary: [
    'Run the network simulator on a scenario file; writes DIR/metrics.json and pictures (map.svg, delivery.svg, airtime.svg). ',
    'The scenario is JSON (SPEC §5); every field but name, nodes and duration_s has a default:',
    '  name, nodes (1 to 5000), duration_s (up to 2592000)',
    '  seed 1; placement "random" (or "grid", "line", "clusters")',
    '  area_m [3000, 3000] (random, clusters); spacing_m 500 (grid, line)',
    '  positions [[x, y], ...]: one per node, in metres; overrides placement',
    '  radio: region "EU868", preset "LongFast", tx_power_dbm 20 (or the region\'s limit if lower),',
    '         path_loss {d0_m 40, pl_d0_db 127.41, exponent 2.08, shadowing_db 3.57}',
    '  churn: offline_fraction 0 (no churn; below 1), mean_offline_s 7200',
    '  traffic: dm_per_node_per_hour 0.5, chat_per_node_per_hour 1, blog_per_node_per_day 0.2,',
    '           body_bytes [40, 300] (0 to 8192), until_s 90% of duration_s (at most duration_s)',
    '  partitions: none; each {from_s, until_s, cut_x_m} cuts every link across x = cut_x_m',
  ].join('\n'),
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
    const seedText = stringOption(args, 'seed');
    const seed = seedText === undefined ? undefined : parseSeed(seedText);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (cause) {
      throw new AppError('SCENARIO_UNREADABLE', `cannot read ${file}: ${fileProblem(cause)}`, 2, { cause });
    }
    // What Windows PowerShell 5 writes with '>' or Out-File: UTF-16 with its byte order mark.
    if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
      throw new AppError('SCENARIO_INVALID', `${file} is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8`, 2);
    }
    const text = bytes.toString('utf8');
    let json: unknown;
    // A byte order mark, as some editors write, is not part of the JSON.
    const body = text.replace(/^\uFEFF/, '');
    try {
      json = JSON.parse(body);
    } catch (cause) {
      throw new AppError('SCENARIO_INVALID', `${file} is not valid JSON: ${jsonProblem(body, cause as Error)}`, 2, { cause });
    }
    try {
      const scenario = parseScenario(json);
      checkMemory(scenario, strategies);
      const out = stringOption(args, 'out') ?? join('sim-out', nameSlug(scenario.name));
      await prepareOutDir(out);
      const bar = !args.values.quiet && process.stderr.isTTY === true ? progressBar() : undefined;
      let result: SimResult;
      try {
        result = await runScenario(scenario, { strategies, ...(seed === undefined ? {} : { seed }), ...(bar ? { onProgress: bar.update } : {}) });
      } finally {
        bar?.done();
      }
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
