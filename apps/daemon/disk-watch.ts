/**
 * What the node says in its log about a full or read-only disk: one line when writes start
 * being refused, a reminder at most every `remindMs` while they still are, and one line when
 * writes work again — never a line per refused write (a busy mesh would write hundreds).
 */
import type { DiskProblem } from '../../mesh/errors.ts';

/** Default time between reminders while the disk stays full. */
export const DISK_REMIND_MS = 10 * 60_000;

export interface DiskWatch {
  /** A write was refused because the disk is full or read-only. */
  problem(kind: DiskProblem): void;
  /** A write succeeded after a problem. */
  recovered(): void;
  /** The disk as the last write found it. */
  state(): 'ok' | DiskProblem;
}

const WHAT: Readonly<Record<DiskProblem, string>> = {
  full: 'full',
  'read-only': 'read-only',
};

export function createDiskWatch(log: (line: string) => void, where: string, options: { now?: () => number; remindMs?: number } = {}): DiskWatch {
  const now = options.now ?? Date.now;
  const remindMs = options.remindMs ?? DISK_REMIND_MS;
  let current: DiskProblem | null = null;
  let since = 0;
  let lastLine = 0;
  let refused = 0;
  return {
    problem(kind) {
      const t = now();
      refused++;
      if (kind !== current) {
        current = kind;
        since = t;
        lastLine = t;
        refused = 1;
        log(`The disk under ${where} is ${WHAT[kind]}: new mail, chat, files and records are refused (nothing is lost) until ${kind === 'full' ? 'space is freed' : 'it is writable again'}.`);
      } else if (t - lastLine >= remindMs) {
        lastLine = t;
        log(`The disk under ${where} is still ${WHAT[kind]} (for ${Math.round((t - since) / 60_000)} min; ${refused} writes refused so far).`);
      }
    },
    recovered() {
      if (current === null) return;
      log(`The disk under ${where} takes writes again (${refused} writes were refused while it was ${WHAT[current]}).`);
      current = null;
      refused = 0;
    },
    state: () => current ?? 'ok',
  };
}
