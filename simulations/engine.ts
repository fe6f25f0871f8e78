/**
 * The discrete-event engine: a virtual clock and a binary-heap event queue. Nothing here reads
 * real time. Events at the same instant run in the order they were scheduled, so a run is a
 * pure function of its inputs.
 *
 * Two ways to run: `run` for strategies whose code is synchronous (the flood baseline), and
 * `runAsync` for real node code with promises (in-memory stores, the sync protocol):
 * after the events of one instant it lets the real event loop settle — `setImmediate` turns
 * until two pass with nothing newly scheduled — before virtual time moves on.
 */
import type { Clock, Timer } from '../radio/duty-cycle.ts';

/** The virtual epoch: 2026-01-01T00:00:00Z, so records carry plausible times. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1);

/** One scheduled action; `cancelled` events stay in the heap and are skipped when due. */
export interface SimEvent {
  time: number;
  seq: number;
  action: () => void;
  cancelled: boolean;
}

/** A min-heap of events ordered by (time, seq). */
export class EventQueue {
  readonly #heap: SimEvent[] = [];

  get size(): number {
    return this.#heap.length;
  }

  peek(): SimEvent | undefined {
    return this.#heap[0];
  }

  push(event: SimEvent): void {
    const heap = this.#heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = event;
  }

  pop(): SimEvent | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/** The virtual clock, the event queue and the timers handed to node code. */
export class Simulator {
  /** Virtual time in ms since the start of the run. */
  now = 0;
  /** Events run so far (cancelled ones not counted). */
  events = 0;
  readonly #queue = new EventQueue();
  #seq = 0;
  /** The clock node code sees: Unix ms, starting at SIM_EPOCH_MS. */
  readonly clock: Clock;
  /** Timers on virtual time, for the duty-cycle governor and node code. */
  readonly timer: Timer;
  /** Told whenever virtual time moves (progress reports); not an event, so it changes nothing. */
  onAdvance: ((now: number) => void) | undefined;

  constructor(readonly epochMs = SIM_EPOCH_MS) {
    this.clock = { now: () => this.epochMs + this.now };
    this.timer = {
      setTimeout: (callback, ms) => this.after(Math.max(0, Number(ms) || 0), callback),
      clearTimeout: (handle) => {
        if (handle && typeof handle === 'object') (handle as SimEvent).cancelled = true;
      },
    };
  }

  /** Run `action` at virtual time `time` (ms; never in the past). */
  at(time: number, action: () => void): SimEvent {
    const event: SimEvent = { time: Math.max(time, this.now), seq: this.#seq++, action, cancelled: false };
    this.#queue.push(event);
    return event;
  }

  /** Run `action` `delayMs` from now. */
  after(delayMs: number, action: () => void): SimEvent {
    return this.at(this.now + delayMs, action);
  }

  cancel(event: SimEvent | undefined): void {
    if (event) event.cancelled = true;
  }

  /** Events waiting (including cancelled ones not yet reached). */
  get pending(): number {
    return this.#queue.size;
  }

  /** Run every event up to and including `untilMs`, synchronously; the clock ends at `untilMs`. */
  run(untilMs: number): void {
    const queue = this.#queue;
    for (;;) {
      const top = queue.peek();
      if (!top || top.time > untilMs) break;
      queue.pop();
      if (top.cancelled) continue;
      if (top.time !== this.now) {
        this.now = top.time;
        this.onAdvance?.(this.now);
      }
      this.events++;
      top.action();
    }
    this.now = Math.max(this.now, untilMs);
  }

  /**
   * Like `run`, but after each instant the real event loop settles, so promise chains started
   * by the events (store writes, sync sessions) finish before virtual time moves on.
   */
  async runAsync(untilMs: number): Promise<void> {
    const queue = this.#queue;
    await this.settle();
    for (;;) {
      const top = queue.peek();
      if (!top || top.time > untilMs) break;
      if (top.time !== this.now) {
        this.now = top.time;
        this.onAdvance?.(this.now);
      }
      for (;;) {
        const next = queue.peek();
        if (!next || next.time > this.now) break;
        queue.pop();
        if (next.cancelled) continue;
        this.events++;
        next.action();
      }
      await this.settle();
    }
    this.now = Math.max(this.now, untilMs);
  }

  /** Let real promises and immediates run until two event-loop turns schedule nothing new. */
  async settle(): Promise<void> {
    let quiet = 0;
    while (quiet < 2) {
      const seq = this.#seq;
      await new Promise<void>((resolve) => setImmediate(resolve));
      quiet = seq === this.#seq ? quiet + 1 : 0;
      const next = this.#queue.peek();
      if (next && next.time <= this.now && !next.cancelled) return;
    }
  }
}
