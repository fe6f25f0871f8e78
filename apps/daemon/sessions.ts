/**
 * Portal login sessions, in memory: a random 32-byte id (base64url) in an HttpOnly cookie
 * names one session. A session ends after `idleTtlMs` without use or `absoluteTtlMs` after
 * login, whichever comes first. The table is keyed by SHA-256 of the id, so neither a
 * memory dump nor a timing side channel of the map lookup gives out live ids.
 *
 * Sessions do not survive a restart of the node: members log in again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../../mesh/clock.ts';

/** One session, as a snapshot (changing it changes nothing). */
export interface Session {
  /** The secret id the cookie carries. */
  readonly id: string;
  readonly user: string;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly lastSeenAt: number;
  /** When the session ends at the latest (absolute expiry), epoch milliseconds. */
  readonly expiresAt: number;
}

export interface SessionOptions {
  clock?: Clock;
  /** Idle expiry. Default 7 days. */
  idleTtlMs?: number;
  /** Absolute expiry. Default 30 days. */
  absoluteTtlMs?: number;
  /** Sessions one member may hold at once; creating one more ends the oldest. Default 32. */
  maxPerUser?: number;
}

export interface Sessions {
  /** Start a new session for `user` with a fresh random id. */
  create(user: string): Session;
  /** The live session with this id (and mark it used), or null if unknown or expired. */
  get(id: string): Session | null;
  /** End one session; true if it existed. */
  destroy(id: string): boolean;
  /** End every session of `user` ("log out everywhere"); returns how many ended. */
  destroyAllFor(user: string): number;
  /** Live sessions (expired ones may be counted until swept). */
  readonly size: number;
}

export const DEFAULT_IDLE_TTL_MS = 7 * 24 * 3600_000;
export const DEFAULT_ABSOLUTE_TTL_MS = 30 * 24 * 3600_000;
const ID = /^[A-Za-z0-9_-]{43}$/;

interface Entry {
  id: string;
  user: string;
  createdAt: number;
  lastSeenAt: number;
}

function keyOf(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

/** Create an empty session table. */
export function createSessions(options: SessionOptions = {}): Sessions {
  const clock = options.clock ?? systemClock;
  const idle = options.idleTtlMs ?? DEFAULT_IDLE_TTL_MS;
  const absolute = options.absoluteTtlMs ?? DEFAULT_ABSOLUTE_TTL_MS;
  const maxPerUser = options.maxPerUser ?? 32;
  const table = new Map<string, Entry>();

  const expired = (e: Entry, now: number) => now - e.lastSeenAt >= idle || now - e.createdAt >= absolute;
  const snapshot = (e: Entry): Session => ({ id: e.id, user: e.user, createdAt: e.createdAt, lastSeenAt: e.lastSeenAt, expiresAt: e.createdAt + absolute });

  function sweep(now: number): void {
    for (const [key, e] of table) if (expired(e, now)) table.delete(key);
  }

  return {
    create(user) {
      const now = clock.now();
      sweep(now);
      const mine = [...table].filter(([, e]) => e.user === user).sort(([, a], [, b]) => a.createdAt - b.createdAt);
      for (const [key] of mine.slice(0, Math.max(0, mine.length - maxPerUser + 1))) table.delete(key);
      const entry: Entry = { id: randomBytes(32).toString('base64url'), user, createdAt: now, lastSeenAt: now };
      table.set(keyOf(entry.id), entry);
      return snapshot(entry);
    },

    get(id) {
      if (typeof id !== 'string' || !ID.test(id)) return null;
      const key = keyOf(id);
      const entry = table.get(key);
      if (!entry) return null;
      const now = clock.now();
      if (expired(entry, now)) {
        table.delete(key);
        return null;
      }
      entry.lastSeenAt = now;
      return snapshot(entry);
    },

    destroy(id) {
      return typeof id === 'string' && ID.test(id) && table.delete(keyOf(id));
    },

    destroyAllFor(user) {
      let ended = 0;
      for (const [key, e] of table) if (e.user === user && table.delete(key)) ended++;
      return ended;
    },

    get size() {
      return table.size;
    },
  };
}
