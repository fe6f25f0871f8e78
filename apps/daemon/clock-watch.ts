/**
 * What the node says in its log when neighbours' clocks disagree with its own by more than
 * the mesh allows (their beacons and records are then refused): one line when it starts, a
 * reminder at most every `remindMs` while it lasts, one line when the clocks agree again.
 *
 * The node does not set its clock from the mesh: a neighbour's time is only its word, and a
 * household that took it would let anyone with a radio make its records expire. It says what
 * it sees and what to do; the household sets the clock (or gives the Pi NTP, or an RTC).
 */

/** Default time between reminders while the clocks still disagree. */
export const CLOCK_REMIND_MS = 60 * 60_000;

export interface ClockDisagreement {
  /** Households whose signed beacons were refused for their time in the last hour. */
  households: number;
  /** The median of how far their time is from ours, seconds (positive: theirs is ahead). */
  offsetS: number;
}

export interface ClockWatch {
  /** Look again (the daemon calls it every minute). */
  check(): void;
}

/** "6 h 5 min", "12 min", "45 s". */
export function spanInWords(seconds: number): string {
  const s = Math.round(Math.abs(seconds));
  if (s < 60) return `${s} s`;
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (days > 0) return hours > 0 ? `${days} d ${hours} h` : `${days} d`;
  if (hours > 0) return minutes > 0 ? `${hours} h ${minutes} min` : `${hours} h`;
  return `${minutes} min`;
}

/** The log line for a disagreement: whose clock is probably wrong, by how much, and what to do. */
export function clockWarning(d: ClockDisagreement, allowedS: number, nowMs: number): string {
  const who = d.households === 1 ? "1 neighbouring household's clock is" : `${d.households} neighbouring households' clocks are`;
  const direction = d.offsetS > 0 ? 'ahead of' : 'behind';
  const theirs = new Date(nowMs + d.offsetS * 1000).toISOString().slice(0, 16).replace('T', ' ');
  return (
    `Clock: ${who} about ${spanInWords(d.offsetS)} ${direction} this node's (the mesh allows ${spanInWords(allowedS)}), so their beacons and records are refused. ` +
    `If this node's clock is wrong (a Raspberry Pi without a real-time clock or internet keeps the time it had when it lost power), ` +
    `set it — theirs reads ${theirs} UTC: sudo date -u -s '${theirs}' — or give it NTP.`
  );
}

export function createClockWatch(
  disagreement: () => ClockDisagreement | null,
  log: (line: string) => void,
  options: { allowedS: number; now?: () => number; remindMs?: number },
): ClockWatch {
  const now = options.now ?? Date.now;
  const remindMs = options.remindMs ?? CLOCK_REMIND_MS;
  let warnedAt: number | null = null;
  return {
    check() {
      const d = disagreement();
      if (d === null) {
        if (warnedAt !== null) log("Clock: the neighbours' clocks and this node's agree again.");
        warnedAt = null;
        return;
      }
      const t = now();
      if (warnedAt === null || t - warnedAt >= remindMs) {
        warnedAt = t;
        log(clockWarning(d, options.allowedS, t));
      }
    },
  };
}
