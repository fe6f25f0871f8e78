/**
 * Reconciliation figures: for stores of n records that differ in d, all on one side (a node
 * that missed records) or half on each (two nodes that were apart), the messages and bytes
 * of a session both ways against the information-theoretic bound d·(64 − log2 d + 1.44)
 * bits, also without the session's fixed header, and the CPU time of both peers together. Messages fit a LoRa budget of 200 bytes;
 * one line repeats a case with a UDP budget of 1100. "cpu ms" is a session between sets that
 * have just been made (every sketch built from scratch); "warm ms" is the next session after
 * the two have exchanged that difference and each gained d new ids, as between neighbours that
 * sync again and again (the id sets keep their sketches). Also the sketch itself: adding an
 * element (µs per element at capacity c) and decoding a full sketch of capacity c.
 */
import { createIdSet, encodeReconcileMessage, Reconciler, type MutableIdSet } from '../mesh/reconcile.ts';
import { Sketch } from '../mesh/sketch.ts';
import type { Report } from './harness.ts';

export interface ReconcileBenchOptions {
  sizes: number[];
  differences: number[];
  /** Wall-clock budget per sketch figure, ms (default 400). */
  sketchBudgetMs?: number;
}

export interface SessionFigures {
  messages: number;
  bytes: number;
  /** The fixed header of a session: the opening without its one syndrome, and DONE. */
  fixedBytes: number;
  cpuMs: number;
  correct: boolean;
}

/** A seeded source of 64-bit ids (mulberry32 pairs). */
function idSource(seed: number): () => bigint {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return () => ((BigInt(next()) << 32n) | BigInt(next())) || 1n;
}

/** Two sets of n ids (the larger side) differing in d: all extra on `a`, or split half/half. */
export function makeSets(n: number, d: number, split: boolean, seed: number): { a: MutableIdSet; b: MutableIdSet; onlyA: bigint[]; onlyB: bigint[] } {
  const next = idSource(seed);
  const common: bigint[] = [];
  for (let i = 0; i < n - d; i++) common.push(next());
  const onlyA: bigint[] = [];
  const onlyB: bigint[] = [];
  for (let i = 0; i < d; i++) (split && i % 2 === 1 ? onlyB : onlyA).push(next());
  return { a: createIdSet([...common, ...onlyA]), b: createIdSet([...common, ...onlyB]), onlyA, onlyB };
}

/** Run one session in memory: `a` opens, `b` responds; returns its figures. */
export function runSession(a: MutableIdSet, b: MutableIdSet, expected: { onlyA: bigint[]; onlyB: bigint[] }, maxMessageBytes: number): SessionFigures {
  a.sorted();
  b.sorted(); // build the snapshots outside the timed part: the store keeps them
  const started = process.cpuUsage();
  const initiator = new Reconciler(a, { maxMessageBytes });
  const responder = new Reconciler(b, { maxMessageBytes });
  let toResponder = initiator.open();
  const fixedBytes = toResponder.reduce((sum, m) => sum + m.length, 0);
  let messages = 0;
  let bytes = 0;
  const theyLack = new Set<bigint>();
  const weLack = new Set<bigint>();
  let done = false;
  while (!done && toResponder.length > 0) {
    const toInitiator: Uint8Array[] = [];
    for (const message of toResponder) {
      messages++;
      bytes += message.length;
      if (done) continue;
      const result = responder.receive(message);
      for (const id of result.theyLack) theyLack.add(id);
      for (const id of result.weLack) weLack.add(id);
      toInitiator.push(...result.replies);
      done = result.done;
    }
    toResponder = [];
    for (const message of toInitiator) {
      messages++;
      bytes += message.length;
      toResponder.push(...initiator.receive(message).replies);
    }
  }
  const used = process.cpuUsage(started);
  const cpuMs = (used.user + used.system) / 1000;
  const correct = done && sameSet(weLack, expected.onlyA) && sameSet(theyLack, expected.onlyB);
  return { messages, bytes, fixedBytes: fixedBytes - 8 + encodeReconcileMessage({ type: 'done' }).length, cpuMs, correct };
}

function sameSet(found: Set<bigint>, expected: bigint[]): boolean {
  return found.size === expected.length && expected.every((id) => found.has(id));
}

/** d·(b − log2 d + 1.44) bits with b = 64, in bytes. */
export function boundBytes(d: number): number {
  return d === 0 ? 0 : (d * (64 - Math.log2(d) + 1.44)) / 8;
}

/** CPU time of `op` in ms (user + system), which other processes on the machine disturb less than wall time. */
function cpuMs(op: () => void): number {
  const before = process.cpuUsage();
  op();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

/** Sketch figures: µs per element added and per full decode, at several capacities. */
export function benchSketch(report: Report, budgetMs: number): void {
  report.section('PinSketch (mesh/sketch.ts): CPU per operation');
  const next = idSource(99);
  // Warm up: the first calls of each code path include its compilation.
  for (const c of [8, 16, 32, 64, 128]) {
    const warm = new Sketch(c);
    for (let i = 0; i < c; i++) warm.add(next());
    for (let i = 0; i < 3; i++) warm.decode();
  }
  for (const c of [8, 16, 32, 64, 128]) {
    const elements = Array.from({ length: 4 * c }, next);
    let reps = 0;
    let sketch = new Sketch(c);
    const addMs = cpuMs(() => {
      for (const started = performance.now(); performance.now() - started < budgetMs / 4 || reps < 2; reps++) {
        sketch = new Sketch(c);
        for (let i = 0; i < c; i++) sketch.add(elements[(reps + i) % elements.length]!);
      }
    });
    report.add(`sketch add, capacity ${c}`, (1000 * addMs) / (reps * c), 'µs/element');
    let decodes = 0;
    let ok = true;
    const decodeMs = cpuMs(() => {
      for (const started = performance.now(); performance.now() - started < budgetMs / 2 || decodes < 2; decodes++) ok &&= sketch.decode()?.length === c;
    });
    report.add(`sketch decode of ${c} elements, capacity ${c}`, (1000 * decodeMs) / decodes, 'µs', ok ? undefined : 'WRONG');
  }
}

/** Both sets learn the difference of the last session, and each gains `d` new ids (half each). */
function moveOn(sets: { a: MutableIdSet; b: MutableIdSet; onlyA: bigint[]; onlyB: bigint[] }, d: number, seed: number): { onlyA: bigint[]; onlyB: bigint[] } {
  for (const id of sets.onlyA) sets.b.add(id);
  for (const id of sets.onlyB) sets.a.add(id);
  const next = idSource(seed);
  const onlyA: bigint[] = [];
  const onlyB: bigint[] = [];
  for (let i = 0; i < d; i++) (i % 2 === 1 ? onlyB : onlyA).push(next());
  for (const id of onlyA) sets.a.add(id);
  for (const id of onlyB) sets.b.add(id);
  return { onlyA, onlyB };
}

export function benchReconcile(report: Report, options: ReconcileBenchOptions): void {
  benchSketch(report, options.sketchBudgetMs ?? 400);
  report.section('Set reconciliation (mesh/reconcile.ts), 200-byte messages; bound = d·(64 − log2 d + 1.44) bits');
  report.note('ratio−hdr leaves out the fixed header: the opening without its syndrome (count, checksum, framing) and DONE.');
  report.note('cpu ms: a session between new sets (sketches built from scratch); warm ms: the next one, after both gained d ids.');
  report.note('n        d     side   msgs   bytes   bound   ratio   ratio−hdr   cpu ms   warm ms');
  let seed = 1;
  for (const n of options.sizes) {
    for (const d of options.differences) {
      for (const split of [false, true]) {
        const sets = makeSets(n, d, split, seed++);
        const f = runSession(sets.a, sets.b, sets, 200);
        const warm = runSession(sets.a, sets.b, moveOn(sets, d, seed++), 200);
        const bound = boundBytes(d);
        const side = split ? 'half' : 'one';
        report.note(
          `${String(n).padEnd(8)} ${String(d).padStart(4)}  ${side.padEnd(5)} ${String(f.messages).padStart(5)} ${String(f.bytes).padStart(7)} ${bound.toFixed(0).padStart(7)}` +
            `   ${(f.bytes / bound).toFixed(2)}      ${((f.bytes - f.fixedBytes) / bound).toFixed(2)}   ${f.cpuMs.toFixed(0).padStart(6)}   ${warm.cpuMs.toFixed(0).padStart(7)}${f.correct && warm.correct ? '' : '   WRONG'}`,
        );
        report.figures.push({ name: `reconcile n=${n} d=${d} ${side}-sided: warm session cpu`, value: Number(warm.cpuMs.toFixed(1)), unit: 'ms', note: `first session ${f.cpuMs.toFixed(0)} ms` });
        // Kept for results.json without a second printed line: the table above shows them.
        report.figures.push({ name: `reconcile n=${n} d=${d} ${side}-sided: bytes / bound`, value: Number((f.bytes / bound).toFixed(3)), unit: '×', note: `${f.bytes} bytes, ${f.messages} messages, ${f.cpuMs.toFixed(0)} ms` });
      }
    }
  }
  const n = options.sizes[0]!;
  const d = options.differences[options.differences.length - 1]!;
  const sets = makeSets(n, d, true, seed++);
  const udp = runSession(sets.a, sets.b, sets, 1100);
  report.add(`reconcile n=${n} d=${d} half-sided, 1100-byte messages (UDP)`, udp.bytes / boundBytes(d), '×', `${udp.bytes} bytes, ${udp.messages} messages, ${udp.cpuMs.toFixed(0)} ms`);
}
