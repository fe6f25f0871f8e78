/**
 * Fragmentation and reassembly: carry a message of up to 64 KiB over links whose frames are
 * small (LoRa: 255 bytes, Meshtastic: 233), through loss, reordering and duplication, without
 * letting any peer make us hold unbounded partial state.
 *
 * Byte layout (version 1). The first byte is `version << 4 | kind`:
 *
 *   whole message (kind 0), 1 byte of header:
 *     0      1  0x10
 *     1      n  the message
 *
 *   fragment (kind 1), 9 bytes of header, all integers big-endian:
 *     0      1  0x11
 *     1      4  message id (per sender; a counter from a random start)
 *     5      2  fragment index, 0 .. count-1
 *     7      2  fragment count, 2 .. 65535
 *     9      n  chunk, at least 1 byte
 *
 * A message that fits one frame costs one byte; larger ones are cut into equal chunks (the
 * last one shorter). Any other first byte is refused, so a later version can change the layout.
 */
import { RadioError } from './errors.ts';

export const FRAGMENT_VERSION = 1;
/** Header bytes of a frame carrying a whole message. */
export const WHOLE_HEADER_BYTES = 1;
/** Header bytes of a frame carrying one fragment. */
export const FRAGMENT_HEADER_BYTES = 9;
const KIND_WHOLE = 0;
const KIND_FRAGMENT = 1;
const MAX_COUNT = 0xffff;

/** A decoded frame. */
export type FragmentFrame =
  | { kind: 'whole'; payload: Uint8Array }
  | { kind: 'fragment'; messageId: number; index: number; count: number; chunk: Uint8Array };

/** Encode one frame; the inverse of `decodeFragment`. Throws FRAGMENT_INVALID for impossible fields. */
export function encodeFragment(frame: FragmentFrame): Uint8Array {
  if (frame.kind === 'whole') {
    const out = new Uint8Array(WHOLE_HEADER_BYTES + frame.payload.length);
    out[0] = (FRAGMENT_VERSION << 4) | KIND_WHOLE;
    out.set(frame.payload, WHOLE_HEADER_BYTES);
    return out;
  }
  const { messageId, index, count, chunk } = frame;
  if (!Number.isInteger(messageId) || messageId < 0 || messageId > 0xffffffff) {
    throw new RadioError('FRAGMENT_INVALID', `message id must be a 32-bit unsigned integer, got ${String(messageId)}`);
  }
  checkIndexCount(index, count, chunk.length);
  const out = new Uint8Array(FRAGMENT_HEADER_BYTES + chunk.length);
  const view = new DataView(out.buffer);
  out[0] = (FRAGMENT_VERSION << 4) | KIND_FRAGMENT;
  view.setUint32(1, messageId);
  view.setUint16(5, index);
  view.setUint16(7, count);
  out.set(chunk, FRAGMENT_HEADER_BYTES);
  return out;
}

function checkIndexCount(index: number, count: number, chunkLength: number): void {
  if (!Number.isInteger(count) || count < 2 || count > MAX_COUNT) {
    throw new RadioError('FRAGMENT_INVALID', `fragment count must be 2..${MAX_COUNT}, got ${String(count)}`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    throw new RadioError('FRAGMENT_INVALID', `fragment index ${String(index)} is outside 0..${count - 1}`);
  }
  if (chunkLength < 1) throw new RadioError('FRAGMENT_INVALID', 'a fragment must carry at least one byte');
}

/**
 * Decode one frame. Never trusts its input: throws RadioError FRAME_TRUNCATED,
 * FRAGMENT_VERSION_UNKNOWN, FRAGMENT_KIND_UNKNOWN or FRAGMENT_INVALID, and nothing else.
 * The returned payload/chunk are views into `frame`.
 */
export function decodeFragment(frame: Uint8Array): FragmentFrame {
  if (!(frame instanceof Uint8Array)) throw new RadioError('FRAGMENT_INVALID', 'a frame must be a Uint8Array');
  if (frame.length < 1) throw new RadioError('FRAME_TRUNCATED', 'empty frame');
  const version = frame[0]! >> 4;
  const kind = frame[0]! & 0x0f;
  if (version !== FRAGMENT_VERSION) throw new RadioError('FRAGMENT_VERSION_UNKNOWN', `unknown fragment format version ${version}`);
  if (kind === KIND_WHOLE) return { kind: 'whole', payload: frame.subarray(WHOLE_HEADER_BYTES) };
  if (kind !== KIND_FRAGMENT) throw new RadioError('FRAGMENT_KIND_UNKNOWN', `unknown frame kind ${kind}`);
  if (frame.length < FRAGMENT_HEADER_BYTES) {
    throw new RadioError('FRAME_TRUNCATED', `fragment frame of ${frame.length} bytes is shorter than its ${FRAGMENT_HEADER_BYTES}-byte header`);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const messageId = view.getUint32(1);
  const index = view.getUint16(5);
  const count = view.getUint16(7);
  const chunk = frame.subarray(FRAGMENT_HEADER_BYTES);
  checkIndexCount(index, count, chunk.length);
  return { kind: 'fragment', messageId, index, count, chunk };
}

/**
 * Cut `message` into frames of at most `mtu` bytes. One frame with a 1-byte header when it
 * fits; otherwise fragments under `messageId`. Throws MTU_TOO_SMALL or MESSAGE_TOO_LARGE.
 */
export function splitMessage(message: Uint8Array, mtu: number, messageId: number): Uint8Array[] {
  if (!(message instanceof Uint8Array)) throw new RadioError('FRAGMENT_INVALID', 'a message must be a Uint8Array');
  if (!Number.isInteger(mtu) || mtu <= FRAGMENT_HEADER_BYTES) {
    throw new RadioError('MTU_TOO_SMALL', `an MTU of ${String(mtu)} bytes leaves no room after the ${FRAGMENT_HEADER_BYTES}-byte fragment header`);
  }
  if (message.length + WHOLE_HEADER_BYTES <= mtu) return [encodeFragment({ kind: 'whole', payload: message })];
  const chunkSize = mtu - FRAGMENT_HEADER_BYTES;
  const count = Math.ceil(message.length / chunkSize);
  if (count > MAX_COUNT) {
    throw new RadioError('MESSAGE_TOO_LARGE', `${message.length} bytes need ${count} fragments at MTU ${mtu}; at most ${MAX_COUNT}`);
  }
  const frames: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const chunk = message.subarray(index * chunkSize, (index + 1) * chunkSize);
    frames.push(encodeFragment({ kind: 'fragment', messageId, index, count, chunk }));
  }
  return frames;
}

/** A source of random bytes (crypto.getRandomValues in production, seeded in tests). */
export type RandomBytes = (n: number) => Uint8Array;

export interface FragmenterOptions {
  /** Largest frame the link carries, bytes. */
  mtu: number;
  /** Largest message accepted, bytes. Default 65,536. */
  maxMessageBytes?: number;
}

export interface Fragmenter {
  /** Frames for one message, under a fresh message id. Throws MESSAGE_TOO_LARGE above the limit. */
  split(message: Uint8Array): Uint8Array[];
}

/**
 * A sender's fragmenter. Message ids count up from a random start, so ids do not repeat
 * for 2^32 messages and a restarted sender is unlikely to reuse a recent id.
 */
export function createFragmenter(options: FragmenterOptions, components: { random: RandomBytes }): Fragmenter {
  const maxMessageBytes = options.maxMessageBytes ?? 65_536;
  if (!Number.isInteger(options.mtu) || options.mtu <= FRAGMENT_HEADER_BYTES) {
    throw new RadioError('MTU_TOO_SMALL', `an MTU of ${String(options.mtu)} bytes is too small for fragments`);
  }
  const seed = components.random(4);
  let nextId = new DataView(seed.buffer, seed.byteOffset, 4).getUint32(0);
  return {
    split(message) {
      if (message.length > maxMessageBytes) {
        throw new RadioError('MESSAGE_TOO_LARGE', `message of ${message.length} bytes exceeds the ${maxMessageBytes}-byte limit`);
      }
      const frames = splitMessage(message, options.mtu, nextId);
      if (frames.length > 1) nextId = (nextId + 1) >>> 0;
      return frames;
    },
  };
}

/** Why a frame or a partial message was dropped. */
export type ReassemblyDrop =
  /** The frame did not decode. */
  | 'malformed'
  /** A fragment already held, or of a message already delivered. */
  | 'duplicate'
  /** Same message id with a different count, or same index with different bytes. */
  | 'conflict'
  /** More fragments than `maxFragments`. */
  | 'too-many-fragments'
  /** The message grew beyond `maxMessageBytes`. */
  | 'too-large'
  /** A partial message pushed out to respect the memory bounds. */
  | 'evicted'
  /** A partial message that saw no fragment for `timeoutMs`. */
  | 'expired';

export interface ReassemblerOptions {
  /** A partial message is dropped this long after its last fragment. Default 600,000 ms. */
  timeoutMs?: number;
  /** Largest message accepted, bytes. Default 65,536. */
  maxMessageBytes?: number;
  /** Largest fragment count accepted. Default 1024. */
  maxFragments?: number;
  /** Partial messages held per sender; beyond it the sender's oldest is evicted. Default 4. */
  maxPartialsPerSender?: number;
  /** Partial messages held in all. Default 64. */
  maxPartials?: number;
  /**
   * Bytes held in all partial messages, counting each stored fragment as its chunk plus
   * `FRAGMENT_BOOKKEEPING_BYTES`. Default 262,144.
   */
  maxBytesHeld?: number;
  /** Delivered message ids remembered to drop late duplicates. Default 1024. */
  rememberDelivered?: number;
}

/** What a stored fragment costs beyond its chunk, so floods of tiny fragments are charged too. */
export const FRAGMENT_BOOKKEEPING_BYTES = 64;

export interface ReassemblerStats {
  partials: number;
  bytesHeld: number;
  delivered: number;
  dropped: Record<ReassemblyDrop, number>;
}

export interface Reassembler {
  /**
   * Take one frame from `sender` (any stable peer key). Returns the message when this frame
   * completes one, otherwise undefined. Never throws for bad input: drops are counted.
   */
  receive(sender: string, frame: Uint8Array): Uint8Array | undefined;
  /** Drop partial messages past their timeout (also done on every `receive`). */
  expire(): void;
  stats(): ReassemblerStats;
}

interface Partial {
  sender: string;
  messageId: number;
  count: number;
  chunks: Map<number, Uint8Array>;
  bytes: number;
  lastSeen: number;
}

/**
 * Reassembly state for one link. Memory stays within `maxBytesHeld` (plus a small fixed
 * cost per partial) whatever peers send: when it would not, the oldest partial of the
 * sender holding the most bytes is evicted, so a storm from one hostile sender evicts that
 * sender's own partials before anyone else's.
 */
export function createReassembler(options: ReassemblerOptions, components: { clock: { now(): number } }): Reassembler {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const maxMessageBytes = options.maxMessageBytes ?? 65_536;
  const maxFragments = options.maxFragments ?? 1024;
  const maxPartialsPerSender = options.maxPartialsPerSender ?? 4;
  const maxPartials = options.maxPartials ?? 64;
  const maxBytesHeld = options.maxBytesHeld ?? 262_144;
  const rememberDelivered = options.rememberDelivered ?? 1024;
  for (const [name, value] of Object.entries({ timeoutMs, maxMessageBytes, maxFragments, maxPartialsPerSender, maxPartials, maxBytesHeld })) {
    if (!Number.isFinite(value) || value < 1) throw new RadioError('REASSEMBLY_OPTIONS_INVALID', `${name} must be ≥ 1, got ${String(value)}`);
  }
  const { clock } = components;
  /** Partial messages by sender + id, oldest first (Map keeps insertion order). */
  const partials = new Map<string, Partial>();
  /** Partials held per sender (so a new one need not count them over every partial). */
  const perSender = new Map<string, number>();
  /** No partial expires before this instant (a lower bound: expire() scans only from then). */
  let nextExpiry = Number.POSITIVE_INFINITY;
  const delivered = new Set<string>();
  let bytesHeld = 0;
  let deliveredCount = 0;
  const dropped: Record<ReassemblyDrop, number> = {
    malformed: 0,
    duplicate: 0,
    conflict: 0,
    'too-many-fragments': 0,
    'too-large': 0,
    evicted: 0,
    expired: 0,
  };

  const keyOf = (sender: string, messageId: number) => `${sender}\u0000${messageId}`;

  function remove(key: string, reason?: ReassemblyDrop): void {
    const partial = partials.get(key);
    if (!partial) return;
    partials.delete(key);
    const left = perSender.get(partial.sender)! - 1;
    if (left === 0) perSender.delete(partial.sender);
    else perSender.set(partial.sender, left);
    bytesHeld -= partial.bytes;
    if (reason) dropped[reason]++;
  }

  function expire(): void {
    const now = clock.now();
    if (now < nextExpiry) return;
    nextExpiry = Number.POSITIVE_INFINITY;
    for (const [key, partial] of partials) {
      if (now - partial.lastSeen >= timeoutMs) remove(key, 'expired');
      else nextExpiry = Math.min(nextExpiry, partial.lastSeen + timeoutMs);
    }
  }

  function evictOldestOf(sender: string, except: string): boolean {
    for (const [key, partial] of partials) {
      if (partial.sender === sender && key !== except) {
        remove(key, 'evicted');
        return true;
      }
    }
    return false;
  }

  /** Evict until `extra` more bytes and one more partial fit, never touching `keep`. */
  function makeRoom(extra: number, keep: string, newPartial: boolean): boolean {
    while (bytesHeld + extra > maxBytesHeld || (newPartial && partials.size >= maxPartials)) {
      const bySender = new Map<string, number>();
      for (const [key, p] of partials) if (key !== keep) bySender.set(p.sender, (bySender.get(p.sender) ?? 0) + p.bytes + 1);
      let heaviest: string | undefined;
      let most = -1;
      for (const [sender, bytes] of bySender) {
        if (bytes > most) {
          most = bytes;
          heaviest = sender;
        }
      }
      if (heaviest === undefined || !evictOldestOf(heaviest, keep)) return false;
    }
    return true;
  }

  function remember(key: string): void {
    delivered.add(key);
    if (delivered.size > rememberDelivered) delivered.delete(delivered.values().next().value as string);
  }

  function receive(sender: string, frame: Uint8Array): Uint8Array | undefined {
    expire();
    let decoded: FragmentFrame;
    try {
      decoded = decodeFragment(frame);
    } catch (error) {
      if (error instanceof RadioError) {
        dropped.malformed++;
        return undefined;
      }
      throw error;
    }
    if (decoded.kind === 'whole') {
      if (decoded.payload.length > maxMessageBytes) {
        dropped['too-large']++;
        return undefined;
      }
      deliveredCount++;
      return decoded.payload.slice();
    }
    const { messageId, index, count, chunk } = decoded;
    if (count > maxFragments) {
      dropped['too-many-fragments']++;
      return undefined;
    }
    const key = keyOf(sender, messageId);
    if (delivered.has(key)) {
      dropped.duplicate++;
      return undefined;
    }
    const cost = chunk.length + FRAGMENT_BOOKKEEPING_BYTES;
    let partial = partials.get(key);
    if (partial) {
      if (partial.count !== count) {
        dropped.conflict++;
        return undefined;
      }
      const held = partial.chunks.get(index);
      if (held) {
        if (held.length === chunk.length && held.every((b, i) => b === chunk[i])) dropped.duplicate++;
        else dropped.conflict++;
        return undefined;
      }
      if (partial.bytes - partial.chunks.size * FRAGMENT_BOOKKEEPING_BYTES + chunk.length > maxMessageBytes) {
        remove(key, 'too-large');
        return undefined;
      }
    } else {
      if (chunk.length > maxMessageBytes) {
        dropped['too-large']++;
        return undefined;
      }
      if ((perSender.get(sender) ?? 0) >= maxPartialsPerSender) evictOldestOf(sender, key);
    }
    if (!makeRoom(cost, key, !partial)) {
      // Even alone this partial would not fit: drop it.
      remove(key, 'evicted');
      if (!partial) dropped.evicted++;
      return undefined;
    }
    if (!partial) {
      partial = { sender, messageId, count, chunks: new Map(), bytes: 0, lastSeen: clock.now() };
      partials.set(key, partial);
      perSender.set(sender, (perSender.get(sender) ?? 0) + 1);
      nextExpiry = Math.min(nextExpiry, partial.lastSeen + timeoutMs);
    }
    partial.chunks.set(index, chunk.slice());
    partial.bytes += cost;
    partial.lastSeen = clock.now();
    bytesHeld += cost;
    if (partial.chunks.size < count) return undefined;
    remove(key);
    remember(key);
    const length = partial.bytes - count * FRAGMENT_BOOKKEEPING_BYTES;
    const message = new Uint8Array(length);
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const part = partial.chunks.get(i)!;
      message.set(part, offset);
      offset += part.length;
    }
    deliveredCount++;
    return message;
  }

  return {
    receive,
    expire,
    stats: () => ({ partials: partials.size, bytesHeld, delivered: deliveredCount, dropped: { ...dropped } }),
  };
}
