/**
 * A Trickle timer (RFC 6206): talk often while neighbours disagree, rarely while they agree,
 * and stay quiet when enough neighbours already said the same thing.
 *
 * The interval I starts at `iminMs` and doubles after each interval up to `imaxMs`. In each
 * interval the timer fires once, at a random point t in [I/2, I), unless `k` consistent
 * messages were heard in the interval (suppression). `inconsistent()` (a neighbour lacks
 * something, or a new neighbour appeared) resets I to `iminMs` at once.
 *
 * Time and randomness are injected, so the simulator and tests run it on a virtual clock.
 */
import type { Timer } from '../radio/duty-cycle.ts';

export interface TrickleOptions {
  iminMs: number;
  imaxMs: number;
  /** Redundancy constant: consistent messages heard that suppress our own. RFC 6206 suggests 1..5. */
  k: number;
}

export interface TrickleDeps {
  timer: Timer;
  /** Uniform in [0, 1). */
  random: () => number;
}

export class Trickle {
  #interval: number;
  #heard = 0;
  #fireHandle: unknown = null;
  #endHandle: unknown = null;
  #running = false;
  /** Times the timer fired and was not suppressed / was suppressed. */
  transmissions = 0;
  suppressions = 0;

  constructor(
    private readonly options: TrickleOptions,
    private readonly deps: TrickleDeps,
    private readonly onFire: () => void,
  ) {
    if (!(options.iminMs > 0) || !(options.imaxMs >= options.iminMs) || !(options.k >= 1)) {
      throw new RangeError('trickle needs 0 < imin ≤ imax and k ≥ 1');
    }
    this.#interval = options.iminMs;
  }

  get intervalMs(): number {
    return this.#interval;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#interval = this.options.iminMs;
    this.#begin();
  }

  stop(): void {
    this.#running = false;
    this.#clear();
  }

  /** A neighbour said what we would have said. */
  consistent(): void {
    this.#heard++;
  }

  /** Something is different: talk soon. No effect when already at the shortest interval. */
  inconsistent(): void {
    if (!this.#running || this.#interval === this.options.iminMs) return;
    this.#interval = this.options.iminMs;
    this.#clear();
    this.#begin();
  }

  /**
   * Something new that neighbours probably heard too (a forwarded record): talk within
   * `maxIntervalMs`, without the full reset that `inconsistent()` makes.
   */
  hurry(maxIntervalMs: number): void {
    if (!this.#running || this.#interval <= maxIntervalMs) return;
    this.#interval = Math.max(this.options.iminMs, maxIntervalMs);
    this.#clear();
    this.#begin();
  }

  #begin(): void {
    this.#heard = 0;
    const half = this.#interval / 2;
    const at = half + this.deps.random() * half;
    this.#fireHandle = this.deps.timer.setTimeout(() => {
      this.#fireHandle = null;
      if (this.#heard < this.options.k) {
        this.transmissions++;
        this.onFire();
      } else {
        this.suppressions++;
      }
    }, at);
    this.#endHandle = this.deps.timer.setTimeout(() => {
      this.#endHandle = null;
      this.#interval = Math.min(this.#interval * 2, this.options.imaxMs);
      if (this.#running) this.#begin();
    }, this.#interval);
  }

  #clear(): void {
    if (this.#fireHandle !== null) this.deps.timer.clearTimeout(this.#fireHandle);
    if (this.#endHandle !== null) this.deps.timer.clearTimeout(this.#endHandle);
    this.#fireHandle = this.#endHandle = null;
  }
}
