/**
 * Dates inside documents are numbers their authors wrote (ms since the epoch). A date no
 * `Date` can hold (NaN, Infinity, 1e300) would make `toISOString` throw for every reader of
 * the room or the blog, so such an item is not shown.
 */

/** The largest |ms| a JavaScript Date holds (±100,000,000 days from the epoch). */
const MAX_DATE_MS = 8.64e15;

/** Whether `value` is a date in ms that a Date can hold. */
export function isDateMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= MAX_DATE_MS;
}
