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

/** `err` and the errors it was caused by (`cause`), outermost first, at most six deep. */
export function* errorChain(err: unknown): Generator<{ code?: unknown; message?: unknown; cause?: unknown }> {
  let e = err as { code?: unknown; message?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 6; depth++, e = e.cause as typeof e) yield e;
}

/** Why a write to disk failed, when the disk itself is the reason. */
export type DiskProblem = 'full' | 'read-only';

/**
 * LevelDB reports file-system failures as LEVEL_IO_ERROR with the C library's strerror text
 * (`IO error: .../000003.log: No space left on device`): the one place we read message text.
 */
const LEVEL_IO_MESSAGES: ReadonlyArray<[RegExp, DiskProblem]> = [
  [/No space left on device|Disk quota exceeded/i, 'full'],
  [/Read-only file system/i, 'read-only'],
];

/**
 * 'full' or 'read-only' when `err` (or an error it was caused by) says the disk is full
 * (ENOSPC, EDQUOT, STORE_DISK_FULL) or read-only (EROFS, STORE_READ_ONLY); null otherwise.
 */
export function diskProblemOf(err: unknown): DiskProblem | null {
  for (const e of errorChain(err)) {
    switch (e.code) {
      case 'ENOSPC':
      case 'EDQUOT':
      case 'STORE_DISK_FULL':
      case 'DISK_FULL':
        return 'full';
      case 'EROFS':
      case 'STORE_READ_ONLY':
      case 'DISK_READ_ONLY':
        return 'read-only';
      case 'LEVEL_IO_ERROR':
        for (const [pattern, problem] of LEVEL_IO_MESSAGES) if (typeof e.message === 'string' && pattern.test(e.message)) return problem;
    }
  }
  return null;
}
