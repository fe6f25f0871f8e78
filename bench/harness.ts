/**
 * The benchmarks' two tools: `rate` runs an operation for a fixed wall-clock budget and gives
 * operations per second, and `Report` prints one aligned line per figure (name, value, unit)
 * and keeps them for bench/out/results.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, platform, totalmem } from 'node:os';
import { dirname } from 'node:path';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

/**
 * Operations per second of `op`, measured for about `budgetMs` after a short warm-up.
 * `op(i)` gets a running index so callers can cycle through prepared inputs.
 */
export function rate(op: (i: number) => void, budgetMs = 1000): number {
  let i = 0;
  const warmUntil = performance.now() + Math.min(200, budgetMs / 4);
  while (performance.now() < warmUntil) op(i++);
  let n = 0;
  const start = performance.now();
  let now = start;
  // Check the clock every few operations only: fast operations would otherwise time the clock.
  while (now - start < budgetMs) {
    for (let k = 0; k < 16; k++) op(i++ + k);
    n += 16;
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

/** Round to a few significant figures: benchmark noise makes the rest meaningless. */
function round(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const digits = Math.max(0, 3 - Math.floor(Math.log10(Math.abs(value))));
  return Number(value.toFixed(Math.min(digits, 6)));
}

export class Report {
  readonly figures: Figure[] = [];

  section(title: string): void {
    console.log(`\n${title}`);
  }

  add(name: string, value: number, unit: string, note?: string): void {
    const figure: Figure = { name, value: round(value), unit, ...(note ? { note } : {}) };
    this.figures.push(figure);
    const shown = figure.value.toLocaleString('en-US');
    console.log(`  ${name.padEnd(52)} ${shown.padStart(12)}  ${unit}${note ? `   (${note})` : ''}`);
  }

  note(text: string): void {
    console.log(`  ${text}`);
  }

  write(path: string, extra: object): void {
    mkdirSync(dirname(path), { recursive: true });
    const machine = {
      node: process.version,
      platform: `${platform()} ${process.arch}`,
      cpu: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      memoryMiB: Math.round(totalmem() / 2 ** 20),
    };
    writeFileSync(path, `${JSON.stringify({ date: new Date().toISOString(), machine, ...extra, figures: this.figures }, null, 2)}\n`);
  }
}
