/**
 * The firmware bridge's one error type, with a stable machine `code` (see radio/errors.ts).
 * Link methods still reject with radio's `RadioError` codes (LINK_DOWN, FRAME_TOO_LARGE, ...)
 * so every link fails the same way; BridgeError is for what is particular to Meshtastic
 * radios: the stream, the handshake, the device's settings.
 */
export class BridgeError extends Error {
  override readonly name = 'BridgeError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
