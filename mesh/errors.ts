/**
 * The mesh layer's one error type. Every failure carries a stable machine code
 * (`RECORD_BAD_SIGNATURE`, `STORE_QUOTA`, ...) so callers match on `code`, never on
 * message text, and a sentence a person can read.
 */
export class MeshError extends Error {
  override readonly name = 'MeshError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `err` is a mesh error with this code (works across module copies). */
export function hasCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
