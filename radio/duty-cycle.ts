/**
 * The duty-cycle governor: the one gate every transmission on a regulated band passes.
 *
 * Regulators (ETSI EN 300 220 for EU868/EU433) count duty cycle as the transmitter's on-time
 * within any rolling window (one hour for ETSI), not per calendar hour. The governor keeps
 * the start and length of each recent transmission and admits a new frame only when every
 * window that could contain any part of it stays within the budget:
 *
 *   budgetMs = dutyCycle * shareOfLegal * windowMs
 *   admit a frame of `a` ms at `now`  iff  a + Σ { a_i : end_i > now - windowMs } ≤ budgetMs
 *
 * Any window touching the new frame starts after `now - windowMs`, so it can only overlap
 * earlier frames that end after that instant; counting those whole is conservative by at
 * most one frame. By default only half the legal budget is used, as Meshtastic does, which
 * leaves room for the neighbours and for clock and airtime estimation error.
 *
 * Bands without a duty-cycle limit (dutyCycle 1, e.g. US 902–928 MHz) are not limited, but
 * their use is still recorded so `used()` reports it.
 */
import { RadioError } from './errors.ts';

/** Time source; milliseconds, monotonic enough for the window (a virtual clock in tests). */
export interface Clock {
  now(): number;
}

/**
 * Real elapsed time for airtime budgets, whatever is done to the wall clock: a regulator's
 * hour is an hour of real time. A governor on the wall clock forgets the last hour's
 * transmissions when the clock is set forward (a Pi that gets its time after a power cut)
 * and could spend a second budget within one real hour. Milliseconds since about the epoch
 * (the process's start on the wall clock, then monotonic).
 */
export const monotonicClock: Clock = { now: () => performance.timeOrigin + performance.now() };

/** Timer functions used to wait for the budget (the global ones by default). */
export interface Timer {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface DutyCycleOptions {
  /** Legal duty cycle as a fraction in (0, 1]: 0.01 for 1%, 0.1 for 10%, 1 for none. */
  dutyCycle: number;
  /** The rolling window regulators count over; ETSI: one hour. Default 3,600,000 ms. */
  windowMs?: number;
  /** Share of the legal budget this node may use, in (0, 1]. Default 0.5 (as Meshtastic). */
  shareOfLegal?: number;
  /**
   * Bound on remembered transmissions; beyond it the two oldest are merged into one
   * (which only makes the governor stricter). Default 4096.
   */
  maxEntries?: number;
}

export interface DutyCycleComponents {
  clock: Clock;
  /** Used by `acquire` to wait; defaults to the global timers. */
  timer?: Timer;
}

/** Airtime used in the window ending now. */
export interface DutyCycleUsage {
  /** On-time within (now - windowMs, now], in ms. */
  airtimeMs: number;
  /** `airtimeMs / windowMs`, comparable with the duty cycle. */
  fraction: number;
}

export interface DutyCycleGovernor {
  /** Airtime this node may use per window, in ms (Infinity when the band has no limit). */
  readonly budgetMs: number;
  readonly windowMs: number;
  /** Whether a frame of `airtimeMs` may start now. Throws AIRTIME_EXCEEDS_BUDGET if it never can. */
  canSend(airtimeMs: number): boolean;
  /** Milliseconds until a frame of `airtimeMs` may start (0 if now). Throws AIRTIME_EXCEEDS_BUDGET if never. */
  waitTimeMs(airtimeMs: number): number;
  /**
   * Record a transmission starting at `clock.now()`. Throws DUTY_CYCLE_EXCEEDED if it does
   * not fit now, so nothing can be recorded past the budget; check `canSend` first or use `acquire`.
   */
  record(airtimeMs: number): void;
  /**
   * Wait until a frame of `airtimeMs` fits, then record it; resolve when the caller may
   * transmit. Callers are served in order. Rejects with ABORTED if `signal` aborts first.
   */
  acquire(airtimeMs: number, options?: { signal?: AbortSignal }): Promise<void>;
  /** Airtime used in the current window. */
  used(): DutyCycleUsage;
}

interface Transmission {
  start: number;
  end: number;
  airtimeMs: number;
}

const defaultTimer: Timer = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

function checkFraction(name: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 1) {
    throw new RadioError('DUTY_CYCLE_INVALID', `${name} must be a number in (0, 1], got ${String(value)}`);
  }
}

/** The share of the legal budget a governor allows unless told otherwise: half, as Meshtastic does. */
export const DEFAULT_SHARE_OF_LEGAL = 0.5;

/**
 * Build a governor for one transmitter on one band.
 *
 * @example
 *   const governor = createDutyCycleGovernor({ dutyCycle: 0.1 }, { clock: { now: Date.now } });
 *   await governor.acquire(loraAirtimeMs(preset, frame.length));
 *   radio.transmit(frame);
 */
export function createDutyCycleGovernor(options: DutyCycleOptions, components: DutyCycleComponents): DutyCycleGovernor {
  const { dutyCycle } = options;
  const windowMs = options.windowMs ?? 3_600_000;
  const shareOfLegal = options.shareOfLegal ?? DEFAULT_SHARE_OF_LEGAL;
  const maxEntries = options.maxEntries ?? 4096;
  checkFraction('dutyCycle', dutyCycle);
  checkFraction('shareOfLegal', shareOfLegal);
  if (!Number.isFinite(windowMs) || windowMs <= 0) {
    throw new RadioError('DUTY_CYCLE_INVALID', `windowMs must be a positive number, got ${String(windowMs)}`);
  }
  if (!Number.isInteger(maxEntries) || maxEntries < 2) {
    throw new RadioError('DUTY_CYCLE_INVALID', `maxEntries must be an integer ≥ 2, got ${String(maxEntries)}`);
  }
  const { clock } = components;
  const timer = components.timer ?? defaultTimer;
  const unlimited = dutyCycle >= 1;
  const budgetMs = unlimited ? Infinity : dutyCycle * shareOfLegal * windowMs;
  /** Recorded transmissions, oldest first. */
  let log: Transmission[] = [];
  let queue: Promise<void> = Promise.resolve();

  function checkAirtime(airtimeMs: number): void {
    if (typeof airtimeMs !== 'number' || !Number.isFinite(airtimeMs) || airtimeMs < 0) {
      throw new RadioError('AIRTIME_INVALID', `airtime must be a finite number ≥ 0 ms, got ${String(airtimeMs)}`);
    }
    if (airtimeMs > budgetMs) {
      throw new RadioError(
        'AIRTIME_EXCEEDS_BUDGET',
        `a frame of ${airtimeMs} ms can never fit a budget of ${budgetMs} ms per ${windowMs} ms window`,
      );
    }
  }

  /** Forget transmissions that no window touching `now` or later can contain. */
  function prune(now: number): void {
    const cutoff = now - windowMs;
    let drop = 0;
    while (drop < log.length && log[drop]!.end <= cutoff) drop++;
    if (drop > 0) log = log.slice(drop);
  }

  function waitTimeAt(now: number, airtimeMs: number): number {
    if (unlimited) return 0;
    prune(now);
    let counted = log.reduce((sum, t) => sum + t.airtimeMs, 0);
    if (counted + airtimeMs <= budgetMs) return 0;
    // Entries leave the count, oldest end first, at end + windowMs.
    const byEnd = [...log].sort((x, y) => x.end - y.end);
    for (const t of byEnd) {
      counted -= t.airtimeMs;
      if (counted + airtimeMs <= budgetMs) return t.end + windowMs - now;
    }
    /* c8 ignore next: unreachable, airtimeMs ≤ budgetMs was checked */
    return windowMs;
  }

  function canSend(airtimeMs: number): boolean {
    checkAirtime(airtimeMs);
    return waitTimeAt(clock.now(), airtimeMs) === 0;
  }

  function waitTimeMs(airtimeMs: number): number {
    checkAirtime(airtimeMs);
    return waitTimeAt(clock.now(), airtimeMs);
  }

  function record(airtimeMs: number): void {
    checkAirtime(airtimeMs);
    const now = clock.now();
    if (waitTimeAt(now, airtimeMs) > 0) {
      throw new RadioError('DUTY_CYCLE_EXCEEDED', `a frame of ${airtimeMs} ms does not fit the duty-cycle budget now`);
    }
    if (airtimeMs === 0) return;
    log.push({ start: now, end: now + airtimeMs, airtimeMs });
    if (log.length > maxEntries) {
      const [a, b] = log as [Transmission, Transmission];
      log = [{ start: a.start, end: Math.max(a.end, b.end), airtimeMs: a.airtimeMs + b.airtimeMs }, ...log.slice(2)];
    }
  }

  function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        timer.clearTimeout(handle);
        reject(new RadioError('ABORTED', 'waiting for airtime was aborted'));
      };
      const handle = timer.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async function acquireNow(airtimeMs: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      if (signal?.aborted) throw new RadioError('ABORTED', 'waiting for airtime was aborted');
      const wait = waitTimeAt(clock.now(), airtimeMs);
      if (wait === 0) {
        record(airtimeMs);
        return;
      }
      await sleep(wait, signal);
    }
  }

  function acquire(airtimeMs: number, acquireOptions: { signal?: AbortSignal } = {}): Promise<void> {
    try {
      checkAirtime(airtimeMs);
    } catch (error) {
      return Promise.reject(error);
    }
    const turn = queue.then(() => acquireNow(airtimeMs, acquireOptions.signal));
    queue = turn.catch(() => undefined);
    return turn;
  }

  function used(): DutyCycleUsage {
    const now = clock.now();
    prune(now);
    const from = now - windowMs;
    let airtimeMs = 0;
    for (const t of log) airtimeMs += Math.max(0, Math.min(t.end, now) - Math.max(t.start, from));
    return { airtimeMs, fraction: airtimeMs / windowMs };
  }

  return { budgetMs, windowMs, canSend, waitTimeMs, record, acquire, used };
}
