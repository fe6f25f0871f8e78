/**
 * Per-author quotas of the record store: how much of a household's disk (and, through sync,
 * of the neighbourhood's airtime) one author may claim. The store counts each author's
 * records and bytes in the same atomic batch as the records, so a crash can never leave the
 * counters and the records disagreeing; this file holds the limits and the check.
 */
import { MeshError } from './errors.ts';

/** The most one author may keep in the store. */
export interface QuotaLimits {
  /** Records, counting each stored record once. */
  records: number;
  /** Bytes of encoded records (index overhead not included). */
  bytes: number;
}

/** What one author holds now. */
export interface QuotaUsage {
  records: number;
  bytes: number;
}

/** Defaults for authors the household knows nothing special about. */
export const DEFAULT_QUOTA: Readonly<QuotaLimits> = Object.freeze({ records: 10_000, bytes: 8 * 1024 * 1024 });

/**
 * Per-author override: return limits for this author, `null` for no limit (the household's
 * own keys), or `undefined` to apply the store's defaults.
 */
export type QuotaOverride = (author: Uint8Array) => QuotaLimits | null | undefined;

/** Throws STORE_INVALID unless `limits` holds two non-negative safe integers. */
export function checkQuotaLimits(limits: QuotaLimits, what: string): QuotaLimits {
  const ok = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (typeof limits !== 'object' || limits === null || !ok(limits.records) || !ok(limits.bytes)) {
    throw new MeshError('STORE_INVALID', `${what} must be {records, bytes} with non-negative integers`);
  }
  return limits;
}

/** True when one more record of `size` bytes stays within `limits` (`null` = unlimited). */
export function fitsQuota(usage: QuotaUsage, limits: QuotaLimits | null, size: number): boolean {
  return limits === null || (usage.records + 1 <= limits.records && usage.bytes + size <= limits.bytes);
}
