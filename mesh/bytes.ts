/**
 * Byte helpers shared by every codec in the mesh: unsigned LEB128 varints, a bounds-checked
 * reader that throws `MeshError` instead of reading past the end, and small conveniences.
 *
 * Varint layout: 7 bits per byte, least significant group first, high bit set on every byte
 * but the last. Canonical: the last byte is never 0x00 (no padded encodings) and values stop
 * at 2^53 - 1 so they fit a JavaScript number exactly.
 */
import { MeshError } from './errors.ts';

export const MAX_VARINT = Number.MAX_SAFE_INTEGER;

/** Bytes a value takes as a varint. */
export function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/** Growable output buffer for encoders. */
export class ByteWriter {
  private buf: Uint8Array;
  private len = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = Math.max(this.buf.length * 2, 16); // from 16: doubling 0 never grows
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  u8(value: number): this {
    this.reserve(1);
    this.buf[this.len++] = value & 0xff;
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.buf[this.len++] = (value >>> 24) & 0xff;
    this.buf[this.len++] = (value >>> 16) & 0xff;
    this.buf[this.len++] = (value >>> 8) & 0xff;
    this.buf[this.len++] = value & 0xff;
    return this;
  }

  varint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new MeshError('ENCODE_RANGE', `varint out of range: ${value}`);
    }
    this.reserve(varintLength(value));
    while (value >= 0x80) {
      this.buf[this.len++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buf[this.len++] = value;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
    return this;
  }

  /** A varint length followed by the bytes. */
  lengthPrefixed(data: Uint8Array): this {
    return this.varint(data.length).bytes(data);
  }

  get length(): number {
    return this.len;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Bounds-checked reader over untrusted bytes. `what` names the thing being decoded in errors. */
export class ByteReader {
  offset = 0;

  constructor(
    readonly data: Uint8Array,
    private readonly what: string,
    private readonly code = 'DECODE_TRUNCATED',
  ) {}

  get remaining(): number {
    return this.data.length - this.offset;
  }

  private need(n: number): void {
    if (n > this.remaining) {
      throw new MeshError(this.code, `${this.what} is truncated: needs ${n} more bytes at offset ${this.offset}, has ${this.remaining}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.data[this.offset++]!;
  }

  u32(): number {
    this.need(4);
    const d = this.data;
    const o = this.offset;
    this.offset += 4;
    return ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i >= 8) throw new MeshError('DECODE_VARINT', `${this.what}: varint longer than 8 bytes at offset ${this.offset}`);
      const b = this.u8();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new MeshError('DECODE_VARINT', `${this.what}: non-canonical varint at offset ${this.offset - 1}`);
        if (!Number.isSafeInteger(value)) throw new MeshError('DECODE_VARINT', `${this.what}: varint exceeds 2^53`);
        return value;
      }
      scale *= 128;
    }
  }

  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.data.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** A varint length (at most `max`) followed by that many bytes. */
  lengthPrefixed(max: number): Uint8Array {
    const n = this.varint();
    if (n > max) throw new MeshError('DECODE_LENGTH', `${this.what}: length ${n} exceeds the limit of ${max}`);
    return this.bytes(n);
  }

  /** Throws unless every byte was consumed: canonical encodings have no trailing data. */
  end(): void {
    if (this.remaining !== 0) {
      throw new MeshError('DECODE_TRAILING', `${this.what} has ${this.remaining} trailing bytes`);
    }
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic order of byte strings. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function toHex(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
}

export function fromHex(hex: string, what = 'hex string'): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/i.test(hex)) throw new MeshError('DECODE_HEX', `${what} is not valid hex`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Strict UTF-8 decoding: invalid sequences throw a MeshError instead of becoming U+FFFD. */
export function fromUtf8(data: Uint8Array, what = 'text'): string {
  try {
    return utf8Decoder.decode(data);
  } catch (cause) {
    throw new MeshError('DECODE_UTF8', `${what} is not valid UTF-8`, { cause });
  }
}

/**
 * `compute` remembered by content: for a pure function of bytes asked again and again (a key's
 * id: every record is checked against its author's), and in a simulator by hundreds of nodes
 * that know the same keys. Keyed by the whole input, so an answer is always `compute` of
 * exactly those bytes; inputs over `maxBytes` are not remembered, and after `limit` inputs the
 * memory starts over, so strange inputs cost only the computing they would cost anyway. The
 * answer is shared: callers must not change it.
 */
export function memoByContent(compute: (bytes: Uint8Array) => Uint8Array, limit: number, maxBytes: number): (bytes: Uint8Array) => Uint8Array {
  const memo = new Map<string, Uint8Array>();
  return (bytes) => {
    if (bytes.length > maxBytes) return compute(bytes);
    const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
    let answer = memo.get(key);
    if (answer === undefined) {
      answer = compute(bytes);
      if (memo.size >= limit) memo.clear();
      memo.set(key, answer);
    }
    return answer;
  };
}
