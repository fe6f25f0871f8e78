/**
 * Virtual time for tests and benchmarks: a clock and timers that move only when told to.
 * `advanceBy` runs due timers in time order synchronously; `run` also lets promises and I/O
 * callbacks (memory links, memory-level) settle between timers, for async code under test.
 */
interface Pending {
  at: number;
  seq: number;
  callback: () => void;
}

export class VirtualTime {
  #now: number;
  #seq = 0;
  readonly #pending = new Map<number, Pending>();

  constructor(start = Date.UTC(2026, 10, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const seq = ++this.#seq;
    this.#pending.set(seq, { at: this.#now + Math.max(0, ms), seq, callback });
    return seq;
  }

  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.#pending.size;
  }

  #next(until: number): Pending | undefined {
    let best: Pending | undefined;
    for (const p of this.#pending.values()) if (p.at <= until && (!best || p.at < best.at || (p.at === best.at && p.seq < best.seq))) best = p;
    return best;
  }

  /** Move time forward by `ms`, running each timer that falls due, synchronously. */
  advanceBy(ms: number): void {
    const until = this.#now + ms;
    for (let p = this.#next(until); p; p = this.#next(until)) {
      this.#pending.delete(p.seq);
      this.#now = p.at;
      p.callback();
    }
    this.#now = until;
  }

  /** Like `advanceBy`, letting the real event loop settle before and after each timer. */
  async run(ms: number): Promise<void> {
    const until = this.#now + ms;
    await settle();
    for (let p = this.#next(until); p; p = this.#next(until)) {
      this.#pending.delete(p.seq);
      this.#now = p.at;
      p.callback();
      await settle();
    }
    this.#now = until;
  }
}

/** Let pending promises and setImmediate callbacks (several rounds of them) run. */
export async function settle(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve));
}
