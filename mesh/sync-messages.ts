/**
 * The sync protocol's messages: what one node says to its neighbours over any `Link`. A
 * message travels in one link frame, or in several through radio/fragmentation.ts.
 *
 * Byte layout, version 1. Every message starts with the same 9 bytes:
 *
 *   off  size  field
 *   0    1     version << 4 | type        (version 1)
 *   1    8     sender: key id of the sending household (SHA-256 of its Ed25519 key, 8 bytes)
 *
 * then, by type:
 *
 *   1 BEACON — "I am here", signed, so neighbours cannot be faked:
 *     9    32    the household's Ed25519 public key (its key id must equal the sender field)
 *     41   4     time, Unix seconds, big-endian (replays: must rise, and be near our clock)
 *     45   var   records held (varint)
 *     .    1     flags: bit 0 gateway (has an internet link); bit 1 ask
 *     .    8     only with ask: key id of a neighbour the sender heard but could not verify
 *                 yet (it missed that neighbour's beacon): that neighbour should beacon back
 *     .    64    Ed25519 signature over "citizen-beacon-v1" ‖ every byte before it
 *
 *   2 RECONCILE — one message of a set-reconciliation session (mesh/reconcile.ts):
 *     9    8     target: key id of the peer it is for. An opening is for every neighbour and
 *                names here the one neighbour that should send what the opener lacks (its
 *                broadcast serves the opener and everyone else lacking the same); all zero =
 *                whoever holds it
 *     17   1     session number, chosen by the session's initiator
 *     18   1     flags: bit 0 set when sent by the session's initiator (opening, answers to
 *                requests), clear when sent by a responder (requests); bit 1 opening
 *     19   n     the reconciler's message
 *
 *   3 WANT — "I lack these records; please send them":
 *     9    8     target: key id of the neighbour asked (the one whose summary showed that it
 *                holds them); all zero = whoever holds them. Only the target answers: on a
 *                shared channel one answer serves every neighbour that lacks the same record.
 *     17   1     count, 1..64
 *     18   8·n   short ids (first 8 bytes of each record id)
 *
 *   4 RECORD — one record, as mesh/record.ts encodes it:
 *     9    n     the record's bytes
 *
 * Decoding never trusts its input: it throws MeshError SYNC_MALFORMED, SYNC_VERSION or
 * SYNC_TYPE and nothing else. Signatures are checked by `verifyBeacon`, not by the decoder.
 */
import { ByteReader, ByteWriter, concatBytes, equalBytes, utf8 } from './bytes.ts';
import type { SignatureScheme } from './ed25519.ts';
import { MeshError } from './errors.ts';
import { keyId, KEY_ID_LENGTH, type Identity } from './identity.ts';

export const SYNC_VERSION = 1;
export const SHORT_ID_BYTES = 8;
export const MAX_WANT_IDS = 64;
const BEACON_DOMAIN = utf8('citizen-beacon-v1');
const SIGNATURE_BYTES = 64;
const HEADER_BYTES = 1 + KEY_ID_LENGTH;

export enum SyncType {
  Beacon = 1,
  Reconcile = 2,
  Want = 3,
  Record = 4,
}

export interface BeaconMessage {
  type: SyncType.Beacon;
  sender: Uint8Array;
  signingKey: Uint8Array;
  time: number;
  records: number;
  gateway: boolean;
  /** Key id of the neighbour asked to beacon back, or null. */
  ask: Uint8Array | null;
  /** The signed bytes (domain excluded) and the signature, for `verifyBeacon`. */
  signed: Uint8Array;
  signature: Uint8Array;
}

export interface ReconcileMessage {
  type: SyncType.Reconcile;
  sender: Uint8Array;
  /** All zero for an opening heard by every neighbour. */
  target: Uint8Array;
  session: number;
  /** Sent by the session's initiator (else by a responder). */
  fromInitiator: boolean;
  /** The session's first message, for every neighbour (`target` names who serves it). */
  opening: boolean;
  body: Uint8Array;
}

export interface WantMessage {
  type: SyncType.Want;
  sender: Uint8Array;
  /** Who should answer; EVERYONE: whoever holds them. */
  target: Uint8Array;
  ids: bigint[];
}

export interface RecordMessage {
  type: SyncType.Record;
  sender: Uint8Array;
  record: Uint8Array;
}

export type SyncMessage = BeaconMessage | ReconcileMessage | WantMessage | RecordMessage;

/** The target of an opening: every neighbour. */
export const EVERYONE = new Uint8Array(KEY_ID_LENGTH);

function header(type: SyncType, sender: Uint8Array, size: number): ByteWriter {
  if (sender.length !== KEY_ID_LENGTH) throw new MeshError('SYNC_INVALID', `a sender key id is ${KEY_ID_LENGTH} bytes`);
  return new ByteWriter(HEADER_BYTES + size).u8((SYNC_VERSION << 4) | type).bytes(sender);
}

/** A signed beacon for `household`. */
export function encodeBeacon(
  household: Identity,
  fields: { time: number; records: number; gateway: boolean; ask?: Uint8Array | null },
): Uint8Array {
  const w = header(SyncType.Beacon, household.id, 120)
    .bytes(household.signingKey)
    .u32(fields.time)
    .varint(fields.records)
    .u8((fields.gateway ? 1 : 0) | (fields.ask ? 2 : 0));
  if (fields.ask) {
    if (fields.ask.length !== KEY_ID_LENGTH) throw new MeshError('SYNC_INVALID', `a key id is ${KEY_ID_LENGTH} bytes`);
    w.bytes(fields.ask);
  }
  const unsigned = w.finish();
  return concatBytes(unsigned, household.sign(concatBytes(BEACON_DOMAIN, unsigned)));
}

export function encodeReconcile(sender: Uint8Array, target: Uint8Array, session: number, fromInitiator: boolean, body: Uint8Array, opening = false): Uint8Array {
  if (target.length !== KEY_ID_LENGTH) throw new MeshError('SYNC_INVALID', `a target key id is ${KEY_ID_LENGTH} bytes`);
  return header(SyncType.Reconcile, sender, KEY_ID_LENGTH + 2 + body.length)
    .bytes(target)
    .u8(session & 0xff)
    .u8((fromInitiator ? 1 : 0) | (opening ? 2 : 0))
    .bytes(body)
    .finish();
}

export function encodeWant(sender: Uint8Array, target: Uint8Array, ids: readonly bigint[]): Uint8Array {
  if (ids.length < 1 || ids.length > MAX_WANT_IDS) throw new MeshError('SYNC_INVALID', `a WANT carries 1..${MAX_WANT_IDS} ids`);
  if (target.length !== KEY_ID_LENGTH) throw new MeshError('SYNC_INVALID', `a target key id is ${KEY_ID_LENGTH} bytes`);
  const w = header(SyncType.Want, sender, KEY_ID_LENGTH + 1 + ids.length * SHORT_ID_BYTES).bytes(target).u8(ids.length);
  const out = new Uint8Array(SHORT_ID_BYTES);
  const view = new DataView(out.buffer);
  for (const id of ids) {
    view.setBigUint64(0, id);
    w.bytes(out);
  }
  return w.finish();
}

export function encodeRecordMessage(sender: Uint8Array, record: Uint8Array): Uint8Array {
  return header(SyncType.Record, sender, record.length).bytes(record).finish();
}

/** Decode one message. Throws MeshError SYNC_MALFORMED / SYNC_VERSION / SYNC_TYPE only. */
export function decodeSyncMessage(bytes: Uint8Array): SyncMessage {
  if (!(bytes instanceof Uint8Array)) throw new MeshError('SYNC_MALFORMED', 'a sync message must be bytes');
  const r = new ByteReader(bytes, 'sync message', 'SYNC_MALFORMED');
  try {
    const first = r.u8();
    if (first >> 4 !== SYNC_VERSION) throw new MeshError('SYNC_VERSION', `unknown sync message version ${first >> 4}`);
    const sender = Uint8Array.from(r.bytes(KEY_ID_LENGTH));
    const type = first & 0x0f;
    switch (type) {
      case SyncType.Beacon: {
        const signingKey = Uint8Array.from(r.bytes(32));
        const time = r.u32();
        const records = r.varint();
        const flags = r.u8();
        const ask = (flags & 2) === 2 ? Uint8Array.from(r.bytes(KEY_ID_LENGTH)) : null;
        const signedLength = bytes.length - r.remaining;
        const signature = Uint8Array.from(r.bytes(SIGNATURE_BYTES));
        r.end();
        return { type, sender, signingKey, time, records, gateway: (flags & 1) === 1, ask, signed: bytes.slice(0, signedLength), signature };
      }
      case SyncType.Reconcile: {
        const target = Uint8Array.from(r.bytes(KEY_ID_LENGTH));
        const session = r.u8();
        const flags = r.u8();
        return { type, sender, target, session, fromInitiator: (flags & 1) === 1, opening: (flags & 2) === 2, body: Uint8Array.from(r.bytes(r.remaining)) };
      }
      case SyncType.Want: {
        const target = Uint8Array.from(r.bytes(KEY_ID_LENGTH));
        const count = r.u8();
        if (count < 1 || count > MAX_WANT_IDS) throw new MeshError('SYNC_MALFORMED', `a WANT carries 1..${MAX_WANT_IDS} ids, not ${count}`);
        const ids: bigint[] = [];
        for (let i = 0; i < count; i++) {
          const raw = r.bytes(SHORT_ID_BYTES);
          ids.push(new DataView(raw.buffer, raw.byteOffset, SHORT_ID_BYTES).getBigUint64(0));
        }
        r.end();
        return { type, sender, target, ids };
      }
      case SyncType.Record: {
        if (r.remaining === 0) throw new MeshError('SYNC_MALFORMED', 'a RECORD message carries no record');
        return { type, sender, record: Uint8Array.from(r.bytes(r.remaining)) };
      }
      default:
        throw new MeshError('SYNC_TYPE', `unknown sync message type ${type}`);
    }
  } catch (err) {
    if (err instanceof MeshError && err.code.startsWith('SYNC_')) throw err;
    throw new MeshError('SYNC_MALFORMED', 'the sync message is truncated or malformed', { cause: err });
  }
}

/**
 * Check a beacon's signature and that its key matches its sender. Replay and clock checks
 * are the caller's (they need memory of earlier beacons).
 */
export function verifyBeacon(beacon: BeaconMessage, scheme: SignatureScheme): boolean {
  if (!equalBytes(keyId(beacon.signingKey), beacon.sender)) return false;
  return scheme.verify(beacon.signature, concatBytes(BEACON_DOMAIN, beacon.signed), beacon.signingKey);
}

/** The short id sync uses for a record: its id's first 8 bytes, big-endian (0 becomes 1). */
export function recordShortId(id: Uint8Array): bigint {
  return new DataView(id.buffer, id.byteOffset, SHORT_ID_BYTES).getBigUint64(0) || 1n;
}
