/** The radio layer's one error type, with a stable machine `code` (see mesh/errors.ts). */
export class RadioError extends Error {
  override readonly name = 'RadioError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
