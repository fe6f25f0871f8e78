/**
 * The apps layer's error type: a stable machine `code`, a sentence for people, and the HTTP
 * status the API answers with. The CLI prints `message` alone (no stack) unless --debug.
 */
export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
