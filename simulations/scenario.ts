/**
 * Scenario files (SPEC §5): their shape, their defaults, and validation at the boundary.
 * Unknown fields, wrong types and impossible values are refused with a SimError
 * `SCENARIO_INVALID` whose message names the field (`radio.path_loss.exponent: ...`).
 *
 * Defaults (every field but `name`, `nodes` and `duration_s`):
 *
 *   seed 1 · placement "random" · area_m [3000, 3000] · spacing_m 500 · positions none
 *   radio: region EU868, preset LongFast, tx_power_dbm 20,
 *          path_loss {d0_m 40, pl_d0_db 127.41, exponent 2.08, shadowing_db 3.57} (LoRaSim)
 *   churn: offline_fraction 0 (no churn), mean_offline_s 7200
 *   traffic: dm_per_node_per_hour 0.5, chat_per_node_per_hour 1, blog_per_node_per_day 0.2,
 *            body_bytes [40, 300], until_s 90% of duration_s
 *   partitions: none
 *   gateways: none (extra field: node indices with an internet line, drawn on the map)
 */
import { findPreset, type LoraPreset } from '../radio/lora-airtime.ts';
import { findRegion, limitsAt, type BandLimits, type RegionPlan } from '../radio/region-plan.ts';
import { SimError } from './errors.ts';

export type Placement = 'random' | 'grid' | 'line' | 'clusters';

export interface PathLossModel {
  d0_m: number;
  pl_d0_db: number;
  exponent: number;
  shadowing_db: number;
}

export interface Partition {
  from_s: number;
  until_s: number;
  cut_x_m: number;
}

/** A validated scenario with every default filled in. */
export interface Scenario {
  name: string;
  seed: number;
  duration_s: number;
  nodes: number;
  placement: Placement;
  area_m: [number, number];
  spacing_m: number;
  positions: [number, number][] | null;
  radio: { region: string; preset: string; tx_power_dbm: number; path_loss: PathLossModel };
  churn: { offline_fraction: number; mean_offline_s: number };
  traffic: {
    dm_per_node_per_hour: number;
    chat_per_node_per_hour: number;
    blog_per_node_per_day: number;
    body_bytes: [number, number];
    until_s: number;
  };
  partitions: Partition[];
  gateways: number[];
}

/** The radio facts a scenario resolves to. */
export interface ResolvedRadio {
  /** The preset as the region's firmware runs it (wide LoRa at 2.4 GHz: 3.25× the bandwidth, 12-symbol preamble). */
  preset: LoraPreset;
  limits: BandLimits;
  regionName: string;
}

export const DEFAULT_PATH_LOSS: PathLossModel = { d0_m: 40, pl_d0_db: 127.41, exponent: 2.08, shadowing_db: 3.57 };
/** The most nodes the simulator accepts (link budgets are kept for every pair). */
export const MAX_NODES = 5000;
/** Longest simulated time, 30 days. */
export const MAX_DURATION_S = 30 * 86_400;

type Json = unknown;

function fail(field: string, message: string): never {
  throw new SimError('SCENARIO_INVALID', `${field}: ${message}`);
}

function isObject(v: Json): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(obj: { [k: string]: Json }, allowed: readonly string[], prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) fail(prefix + key, `unknown field (known: ${allowed.join(', ')})`);
  }
}

function num(v: Json, field: string, { min = -Infinity, max = Infinity, integer = false, exclusiveMin = false, exclusiveMax = false } = {}): number {
  // JSON.parse reads 1e400 as Infinity, which JSON.stringify would show as null.
  if (typeof v === 'number' && !Number.isFinite(v)) fail(field, `must be a finite number, got one too large to hold (${v})`);
  if (typeof v !== 'number') fail(field, `must be a number, got ${JSON.stringify(v)}`);
  if (integer && !Number.isInteger(v)) fail(field, `must be an integer, got ${v}`);
  if (exclusiveMin ? v <= min : v < min) fail(field, `must be ${exclusiveMin ? 'greater than' : 'at least'} ${min}, got ${v}`);
  if (exclusiveMax ? v >= max : v > max) fail(field, `must be ${exclusiveMax ? 'less than' : 'at most'} ${max}, got ${v}`);
  return v;
}

function pair(v: Json, field: string, opts: Parameters<typeof num>[2] = {}): [number, number] {
  if (!Array.isArray(v) || v.length !== 2) fail(field, `must be an array of two numbers, got ${JSON.stringify(v)}`);
  return [num(v[0], `${field}[0]`, opts), num(v[1], `${field}[1]`, opts)];
}

function section(v: Json, field: string, allowed: readonly string[]): { [k: string]: Json } {
  if (v === undefined) return {};
  if (!isObject(v)) fail(field, 'must be an object');
  checkKeys(v, allowed, `${field}.`);
  return v;
}

/** The longest scenario name: it titles the pictures and names the default output directory. */
export const MAX_NAME_LENGTH = 100;
/**
 * Characters a name may not hold: C0/C1 controls (tab and newline included) and what XML 1.0
 * cannot carry at all (lone surrogates, U+FFFE, U+FFFF), since the name goes into every SVG.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Regions where Meshtastic runs "wide LoRa" (SX128x at 2.4 GHz): every preset's bandwidth is
 * 3.25 times its sub-GHz one (125 → 406.25, 250 → 812.5, 500 → 1625 kHz) and the preamble is
 * 12 symbols (firmware src/mesh/MeshRadio.h modemPresetToParams, RadioInterface.cpp
 * `wideLoraPreambleLengthDefault`; `wide_lora` is true for LORA_24 alone in `regions[]`).
 */
const WIDE_LORA_REGIONS: readonly string[] = ['LORA_24'];
const WIDE_LORA_FACTOR = 3.25;
const WIDE_LORA_PREAMBLE = 12;

/** A preset as the firmware of `region` runs it: wide LoRa regions widen its bandwidth. */
function presetIn(region: RegionPlan, preset: LoraPreset): LoraPreset {
  if (!WIDE_LORA_REGIONS.includes(region.name)) return preset;
  return { ...preset, bw: preset.bw * WIDE_LORA_FACTOR, preamble: WIDE_LORA_PREAMBLE };
}

/**
 * Meshtastic refuses a preset wider than its region's band and falls back to LongFast
 * (firmware RadioInterface.cpp: `if ((freqEnd - freqStart) < bw / 1000)`, newer versions also
 * leave the 500 kHz presets out of EU_868's list), so simulating it as asked would model a
 * network no radio runs: refuse it instead.
 */
function checkPresetFitsRegion(region: RegionPlan, preset: LoraPreset): void {
  const bandKHz = Math.round((region.highMHz - region.lowMHz) * 1e6) / 1000;
  const presetKHz = presetIn(region, preset).bw / 1000;
  if (bandKHz < presetKHz) {
    fail('radio.preset', `${preset.name} needs ${presetKHz} kHz but region ${region.name} is only ${bandKHz} kHz wide (${region.lowMHz}–${region.highMHz} MHz); Meshtastic refuses it there and falls back to LongFast. Choose a preset of at most ${bandKHz} kHz`);
  }
}

/**
 * Presets Meshtastic once had and no longer runs: VERY_LONG_SLOW (SF12, 62.5 kHz) was
 * deprecated in firmware 2.5 and removed in 2025, so a scenario naming it is told so rather
 * than only that the name is unknown.
 */
const REMOVED_PRESETS: { [key: string]: string } = {
  verylongslow: 'VeryLongSlow (SF12, 62.5 kHz) was deprecated in Meshtastic 2.5 and removed from its firmware; the slowest preset here is LongSlow',
};

function removedPresetNote(name: string): string {
  const note = REMOVED_PRESETS[name.replace(/[-_\s]/g, '').toLowerCase()];
  return note === undefined ? '' : ` (${note})`;
}

/**
 * A file-name-safe form of a scenario name for the default output directory: letters, digits,
 * '.', '_' and '-' only, no leading dot (so never '.', '..' or a hidden directory), never empty.
 */
export function nameSlug(name: string): string {
  const slug = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_');
  return slug.length > 0 ? slug : '_';
}

const TOP = ['name', 'seed', 'duration_s', 'nodes', 'placement', 'area_m', 'spacing_m', 'positions', 'radio', 'churn', 'traffic', 'partitions', 'gateways', 'description'];
const PLACEMENTS: readonly Placement[] = ['random', 'grid', 'line', 'clusters'];

/**
 * Check a parsed scenario file and fill in the defaults. Throws SimError SCENARIO_INVALID
 * naming the first offending field.
 */
export function parseScenario(input: Json): Scenario {
  if (!isObject(input)) fail('scenario', 'must be a JSON object');
  checkKeys(input, TOP, '');
  if (input.name === undefined) fail('name', 'is required');
  if (typeof input.name !== 'string' || input.name.length === 0 || input.name.length > MAX_NAME_LENGTH) fail('name', `must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`);
  if (UNPRINTABLE.test(input.name)) fail('name', `must not contain control characters, got ${JSON.stringify(input.name)}`);
  if (input.description !== undefined && typeof input.description !== 'string') fail('description', 'must be a string');
  if (input.nodes === undefined) fail('nodes', 'is required');
  if (input.duration_s === undefined) fail('duration_s', 'is required');
  const nodes = num(input.nodes, 'nodes', { min: 1, max: MAX_NODES, integer: true });
  const duration = num(input.duration_s, 'duration_s', { min: 0, exclusiveMin: true, max: MAX_DURATION_S });
  const seed = input.seed === undefined ? 1 : num(input.seed, 'seed', { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true });
  const placement = (input.placement ?? 'random') as Placement;
  if (!PLACEMENTS.includes(placement)) fail('placement', `must be one of ${PLACEMENTS.join(', ')}, got ${JSON.stringify(input.placement)}`);
  const area = input.area_m === undefined ? ([3000, 3000] as [number, number]) : pair(input.area_m, 'area_m', { min: 0, exclusiveMin: true, max: 1e6 });
  const spacing = input.spacing_m === undefined ? 500 : num(input.spacing_m, 'spacing_m', { min: 0, exclusiveMin: true, max: 1e6 });
  let positions: [number, number][] | null = null;
  if (input.positions !== undefined) {
    if (!Array.isArray(input.positions)) fail('positions', 'must be an array of [x, y] pairs');
    if (input.positions.length > nodes) fail('positions', `has ${input.positions.length} entries but there are only ${nodes} nodes`);
    if (input.positions.length < nodes) fail('positions', `has ${input.positions.length} entries; give one [x, y] per node (${nodes})`);
    positions = input.positions.map((p, i) => pair(p, `positions[${i}]`, { min: -1e6, max: 1e6 }));
  }

  const radioIn = section(input.radio, 'radio', ['region', 'preset', 'tx_power_dbm', 'path_loss']);
  const region = radioIn.region ?? 'EU868';
  if (typeof region !== 'string') fail('radio.region', 'must be a string');
  try {
    findRegion(region);
  } catch (err) {
    fail('radio.region', (err as Error).message);
  }
  const preset = radioIn.preset ?? 'LongFast';
  if (typeof preset !== 'string') fail('radio.preset', 'must be a string');
  try {
    findPreset(preset);
  } catch (err) {
    fail('radio.preset', (err as Error).message + removedPresetNote(preset));
  }
  checkPresetFitsRegion(findRegion(region), findPreset(preset));
  const limits = limitsAt(findRegion(region));
  const txPower = radioIn.tx_power_dbm === undefined ? Math.min(20, limits.maxPowerDbm) : num(radioIn.tx_power_dbm, 'radio.tx_power_dbm', { min: -30, max: limits.maxPowerDbm });
  const plIn = section(radioIn.path_loss, 'radio.path_loss', Object.keys(DEFAULT_PATH_LOSS));
  const pathLoss: PathLossModel = {
    d0_m: plIn.d0_m === undefined ? DEFAULT_PATH_LOSS.d0_m : num(plIn.d0_m, 'radio.path_loss.d0_m', { min: 0, exclusiveMin: true }),
    pl_d0_db: plIn.pl_d0_db === undefined ? DEFAULT_PATH_LOSS.pl_d0_db : num(plIn.pl_d0_db, 'radio.path_loss.pl_d0_db', { min: 0, max: 300 }),
    exponent: plIn.exponent === undefined ? DEFAULT_PATH_LOSS.exponent : num(plIn.exponent, 'radio.path_loss.exponent', { min: 0, exclusiveMin: true, max: 10 }),
    shadowing_db: plIn.shadowing_db === undefined ? DEFAULT_PATH_LOSS.shadowing_db : num(plIn.shadowing_db, 'radio.path_loss.shadowing_db', { min: 0, max: 50 }),
  };

  const churnIn = section(input.churn, 'churn', ['offline_fraction', 'mean_offline_s']);
  const churn = {
    // Any share below 1 (all of them offline, the whole time, is no network at all).
    offline_fraction: churnIn.offline_fraction === undefined ? 0 : num(churnIn.offline_fraction, 'churn.offline_fraction', { min: 0, max: 1, exclusiveMax: true }),
    mean_offline_s: churnIn.mean_offline_s === undefined ? 7200 : num(churnIn.mean_offline_s, 'churn.mean_offline_s', { min: 1, max: MAX_DURATION_S }),
  };

  const trafficIn = section(input.traffic, 'traffic', ['dm_per_node_per_hour', 'chat_per_node_per_hour', 'blog_per_node_per_day', 'body_bytes', 'until_s']);
  const rate = (key: string, fallback: number) => (trafficIn[key] === undefined ? fallback : num(trafficIn[key], `traffic.${key}`, { min: 0, max: 3600 }));
  const body = trafficIn.body_bytes === undefined ? ([40, 300] as [number, number]) : pair(trafficIn.body_bytes, 'traffic.body_bytes', { min: 0, max: 8192, integer: true });
  if (body[0] > body[1]) fail('traffic.body_bytes', `the smallest size (${body[0]}) is larger than the largest (${body[1]})`);
  const until = trafficIn.until_s === undefined ? duration * 0.9 : num(trafficIn.until_s, 'traffic.until_s', { min: 0, max: duration });
  const traffic = {
    dm_per_node_per_hour: rate('dm_per_node_per_hour', 0.5),
    chat_per_node_per_hour: rate('chat_per_node_per_hour', 1),
    blog_per_node_per_day: rate('blog_per_node_per_day', 0.2),
    body_bytes: body,
    until_s: until,
  };

  const partitions: Partition[] = [];
  if (input.partitions !== undefined) {
    if (!Array.isArray(input.partitions)) fail('partitions', 'must be an array');
    input.partitions.forEach((p, i) => {
      const field = `partitions[${i}]`;
      if (!isObject(p)) fail(field, 'must be an object');
      checkKeys(p, ['from_s', 'until_s', 'cut_x_m'], `${field}.`);
      for (const k of ['from_s', 'until_s', 'cut_x_m']) if (p[k] === undefined) fail(`${field}.${k}`, 'is required');
      const from = num(p.from_s, `${field}.from_s`, { min: 0, max: duration });
      const to = num(p.until_s, `${field}.until_s`, { min: 0, max: duration });
      if (to <= from) fail(`${field}.until_s`, `must be after from_s (${from}), got ${to}`);
      partitions.push({ from_s: from, until_s: to, cut_x_m: num(p.cut_x_m, `${field}.cut_x_m`, { min: -1e6, max: 1e6 }) });
    });
  }

  const gateways: number[] = [];
  if (input.gateways !== undefined) {
    if (!Array.isArray(input.gateways)) fail('gateways', 'must be an array of node indices');
    input.gateways.forEach((g, i) => gateways.push(num(g, `gateways[${i}]`, { min: 0, max: nodes - 1, integer: true })));
  }

  return {
    name: input.name,
    seed,
    duration_s: duration,
    nodes,
    placement,
    area_m: area,
    spacing_m: spacing,
    positions,
    radio: { region, preset, tx_power_dbm: txPower, path_loss: pathLoss },
    churn,
    traffic,
    partitions,
    gateways,
  };
}

/** The preset and band limits a scenario's radio section names. */
export function resolveRadio(scenario: Scenario): ResolvedRadio {
  const region = findRegion(scenario.radio.region);
  return { preset: presetIn(region, findPreset(scenario.radio.preset)), limits: limitsAt(region), regionName: region.name };
}
