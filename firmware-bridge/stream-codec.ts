/**
 * The Meshtastic client stream framing, as spoken on a radio's USB serial port and on its TCP
 * port 4403: each protobuf (`ToRadio` from the client, `FromRadio` from the device) travels as
 *
 *   offset  size  field
 *   0       1     START1 = 0x94
 *   1       1     START2 = 0xC3
 *   2       2     length of the payload, big-endian, 0..512
 *   4       n     payload (one protobuf)
 *
 * Everything outside frames is noise to skip: on a serial port the firmware prints its debug
 * log as plain text before a client has spoken (and some builds keep doing so), and a
 * reconnect can start mid-frame. The decoder therefore resynchronises: it scans for START1
 * START2, and a header announcing more than 512 bytes is counted and skipped one byte at a
 * time. Bytes it skipped are handed out as text lines (`onText`) so a bridge can log what the
 * device printed. It never throws on input and holds at most one frame plus one text line.
 *
 * The framing itself has no version field; it is the firmware's, unchanged since 1.2.
 */
import { BridgeError } from './errors.ts';

export const START1 = 0x94;
export const START2 = 0xc3;
/** Header bytes before the payload. */
export const HEADER_BYTES = 4;
/** Largest payload the firmware accepts or sends (MAX_TO_FROM_RADIO_SIZE). */
export const MAX_FRAME_PAYLOAD = 512;
/** Longest text line kept before it is cut and handed out. */
const MAX_TEXT_LINE = 1024;

/** Frames one protobuf payload. Throws BridgeError `FRAME_TOO_LARGE` over 512 bytes. */
export function encodeStreamFrame(payload: Uint8Array): Uint8Array {
  if (!(payload instanceof Uint8Array)) throw new BridgeError('FRAME_INVALID', 'a stream frame payload must be a Uint8Array');
  if (payload.length > MAX_FRAME_PAYLOAD) {
    throw new BridgeError('FRAME_TOO_LARGE', `a stream frame carries at most ${MAX_FRAME_PAYLOAD} bytes, got ${payload.length}`);
  }
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  out[0] = START1;
  out[1] = START2;
  out[2] = payload.length >> 8;
  out[3] = payload.length & 0xff;
  out.set(payload, HEADER_BYTES);
  return out;
}

/** What the decoder has seen; counters only grow. */
export interface StreamDecoderStats {
  /** Whole frames handed to `onFrame`. */
  frames: number;
  /** Bytes skipped outside frames (debug text, garbage). */
  skippedBytes: number;
  /** Headers that announced more than 512 bytes (skipped). */
  oversize: number;
}

/** Callbacks of a stream decoder. */
export interface StreamDecoderHandlers {
  /** One frame's payload (a fresh copy). Exceptions thrown here propagate to `push`'s caller. */
  onFrame(payload: Uint8Array): void;
  /** A line of skipped bytes (without the line end), as latin-1-safe UTF-8 text. */
  onText?(line: string): void;
}

/** An incremental decoder: feed it chunks as they arrive. */
export interface StreamDecoder {
  /** Consumes a chunk; calls the handlers for what it completes. */
  push(chunk: Uint8Array): void;
  /** Forgets a partial frame or line (call on reconnect); a pending text line is handed out. */
  reset(): void;
  /** Bytes held for an unfinished frame or line. */
  readonly pending: number;
  stats(): StreamDecoderStats;
}

/** Builds an incremental stream decoder. */
export function createStreamDecoder(handlers: StreamDecoderHandlers): StreamDecoder {
  const stats: StreamDecoderStats = { frames: 0, skippedBytes: 0, oversize: 0 };
  let buffer = new Uint8Array(0);
  let text: number[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: false });

  function flushText(): void {
    if (text.length === 0) return;
    const line = decoder.decode(Uint8Array.from(text)).replace(/\r$/, '');
    text = [];
    if (line.length > 0) handlers.onText?.(line);
  }

  function skip(byte: number): void {
    stats.skippedBytes++;
    if (byte === 0x0a) return flushText();
    text.push(byte);
    if (text.length >= MAX_TEXT_LINE) flushText();
  }

  function push(chunk: Uint8Array): void {
    if (!(chunk instanceof Uint8Array) || chunk.length === 0) return;
    const joined = new Uint8Array(buffer.length + chunk.length);
    joined.set(buffer);
    joined.set(chunk, buffer.length);
    let i = 0;
    while (i < joined.length) {
      if (joined[i] !== START1) {
        skip(joined[i]!);
        i++;
        continue;
      }
      if (i + 1 >= joined.length) break; // START1 at the end: wait for the next byte
      if (joined[i + 1] !== START2) {
        skip(joined[i]!);
        i++;
        continue;
      }
      if (i + HEADER_BYTES > joined.length) break;
      const length = (joined[i + 2]! << 8) | joined[i + 3]!;
      if (length > MAX_FRAME_PAYLOAD) {
        stats.oversize++;
        skip(joined[i]!);
        i++;
        continue;
      }
      if (i + HEADER_BYTES + length > joined.length) break;
      flushText();
      const payload = joined.slice(i + HEADER_BYTES, i + HEADER_BYTES + length);
      i += HEADER_BYTES + length;
      stats.frames++;
      buffer = joined.subarray(i); // so a throwing handler leaves the rest for the next push
      handlers.onFrame(payload);
    }
    buffer = joined.slice(i);
  }

  return {
    push,
    reset() {
      buffer = new Uint8Array(0);
      flushText();
    },
    get pending() {
      return buffer.length + text.length;
    },
    stats: () => ({ ...stats }),
  };
}
