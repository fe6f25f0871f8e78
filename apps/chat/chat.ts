/**
 * Chat rooms on top of the mesh.
 *
 * - A public room is a Yjs document (type `chat-room`, anyone may write) whose array
 *   `messages` holds `{text, date}` items. Who wrote an item is its Yjs client id, which the
 *   document binds to the signing author (see authors.ts), so a message cannot claim a sender.
 *   Every household that holds the room's records reads it.
 * - A private room (and a direct message, a private room of two) is sealed: its header and
 *   every message are records of kind Message sealed to each member's X25519 key, in the
 *   room's feed. Relays carry them and learn only the recipients' key ids. The room id is
 *   deriveFeedId(creator, nonce), and only the header at seq 0 of the creator whose id
 *   derives the feed counts, so nobody can claim someone else's room; a message counts only
 *   when its signer is a member the header lists. Membership is fixed at creation (a new
 *   member set is a new room): Yjs would not help here, since sealed updates could not be
 *   merged by relays anyway.
 *
 * Sealed payload (before sealing), version 1: byte 0 = 1, then UTF-8 JSON, either
 * `{"t":"room","n":name,"m":[address..],"k":nonce-hex}` or `{"t":"msg","x":text}`.
 */
import { equalBytes, fromHex, fromUtf8, toHex, utf8 } from '../../mesh/bytes.ts';
import { deriveFeedId } from '../../mesh/document-payload.ts';
import { clientIdFor } from '../../mesh/document-update.ts';
import { keyId, type Identity } from '../../mesh/identity.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { Priority, RecordKind, type Record } from '../../mesh/record.ts';
import { MAX_RECIPIENTS, open, seal, sealedRecipients } from '../../mesh/seal.ts';
import * as Y from 'yjs';
import { isDateMs } from '../date-ms.ts';
import { AppError } from '../errors.ts';
import type { ChatMessageView, ChatService, RoomView } from '../daemon/services.ts';
import { AuthorNames, itemsWithClient } from './authors.ts';
import { settledDoc } from './document-repair.ts';

export const ROOM_TYPE = 'chat-room';
export const MAX_TEXT_CHARS = 4000;
export const MAX_ROOM_NAME_CHARS = 64;
/** Private chat lives 90 days in the mesh. */
export const PRIVATE_CHAT_TTL_S = 90 * 24 * 3600;
const PAYLOAD_VERSION = 1;
const ROOM_ID = /^[0-9a-f]{16}$/;
/** Public rooms whose sorted messages are kept between requests. */
const ROOM_CACHE_SIZE = 4;

type Sealed = { t: 'room'; n: string; m: string[]; k: string } | { t: 'msg'; x: string };

export function encodeChatPayload(value: Sealed): Uint8Array {
  const json = utf8(JSON.stringify(value));
  const out = new Uint8Array(json.length + 1);
  out[0] = PAYLOAD_VERSION;
  out.set(json, 1);
  return out;
}

/** Decode a sealed chat payload; null for anything that is not a well-formed one. */
export function decodeChatPayload(bytes: Uint8Array): Sealed | null {
  if (bytes.length < 2 || bytes[0] !== PAYLOAD_VERSION) return null;
  try {
    const v = JSON.parse(fromUtf8(bytes.subarray(1))) as Partial<{ t: string; n: unknown; m: unknown; k: unknown; x: unknown }>;
    if (v.t === 'room' && typeof v.n === 'string' && Array.isArray(v.m) && v.m.every((a) => typeof a === 'string') && typeof v.k === 'string' && /^[0-9a-f]{16}$/.test(v.k)) {
      return { t: 'room', n: v.n, m: v.m as string[], k: v.k };
    }
    if (v.t === 'msg' && typeof v.x === 'string') return { t: 'msg', x: v.x };
  } catch {
    // not JSON: not ours
  }
  return null;
}

export interface ChatDeps {
  node: MeshNode;
  memberIdentity(name: string): Promise<Identity>;
  /** Milliseconds since the epoch, for the dates inside documents. Default Date.now. */
  nowMs?: () => number;
}

interface PrivateRoom {
  id: string;
  name: string;
  members: string[];
}

export class Chat implements ChatService {
  private readonly names: AuthorNames;
  /** Opened sealed records by reader and record id (records never change). */
  private readonly opened = new Map<string, Sealed | null>();

  /** Ids (hex) of sealed Message records at seq 0: the only records that can be private room headers. */
  private readonly headers = new Set<string>();
  private scanned: Promise<void> | null = null;
  /** Records stored per room (hex feed): a public room's cached messages are stale once it moves. */
  private readonly roomVersions = new Map<string, number>();
  /** Document geneses stored since start, and the public rooms as listed at a count of them. */
  private geneses = 0;
  private listedRooms: { geneses: number; documents: number; list: RoomView[] } | null = null;
  /** The messages of the public rooms read last, sorted (a few rooms: a long room is megabytes). */
  private readonly roomCache = new Map<string, { doc: Y.Doc; version: number; names: number; list: ChatMessageView[] }>();

  constructor(private readonly deps: ChatDeps) {
    this.names = new AuthorNames(deps.node);
    deps.node.on('record', (record) => {
      if (record.kind === RecordKind.Message && record.sealed && record.seq === 0) this.headers.add(toHex(record.id));
      if (record.kind === RecordKind.DocumentGenesis) this.geneses++;
      if (record.kind === RecordKind.DocumentUpdate || record.kind === RecordKind.DocumentGenesis || record.kind === RecordKind.DocumentAcl) {
        const room = toHex(record.feed);
        if (this.roomCache.has(room)) this.roomVersions.set(room, (this.roomVersions.get(room) ?? 0) + 1);
      }
    });
  }

  /** Find the room headers already in the store (once, on first use). */
  private scan(): Promise<void> {
    this.scanned ??= (async () => {
      for await (const record of this.deps.node.store.records()) {
        if (record.kind === RecordKind.Message && record.sealed && record.seq === 0) this.headers.add(toHex(record.id));
      }
    })();
    return this.scanned;
  }

  private address(user: string): string {
    return `${user}@${this.deps.node.householdName}`;
  }

  private openRecord(record: Record, me: Identity): Sealed | null {
    const key = `${toHex(me.id)}/${toHex(record.id)}`;
    if (this.opened.has(key)) return this.opened.get(key)!;
    let value: Sealed | null = null;
    try {
      value = decodeChatPayload(open(record.payload, me, record.author));
    } catch {
      value = null;
    }
    if (this.opened.size > 50_000) this.opened.clear();
    this.opened.set(key, value);
    return value;
  }

  /** A private room's header if `record` is a genuine one readable by `me`. */
  private roomOf(record: Record, me: Identity): PrivateRoom | null {
    if (record.kind !== RecordKind.Message || !record.sealed || record.seq !== 0) return null;
    const value = this.openRecord(record, me);
    if (!value || value.t !== 'room') return null;
    if (!equalBytes(deriveFeedId(record.author, fromHex(value.k)), record.feed)) return null;
    return { id: toHex(record.feed), name: value.n, members: value.m };
  }

  /** The public rooms, kept until a document is created here or arrives. */
  private publicRooms(): RoomView[] {
    const { documents } = this.deps.node;
    if (this.listedRooms?.geneses === this.geneses && this.listedRooms.documents === documents.size) return this.listedRooms.list;
    const list: RoomView[] = [];
    for (const replica of documents) {
      const meta = replica.meta;
      if (meta?.type === ROOM_TYPE) list.push({ id: toHex(meta.feed), name: meta.name, members: null });
    }
    this.listedRooms = { geneses: this.geneses, documents: documents.size, list };
    return list;
  }

  async rooms(user: string): Promise<RoomView[]> {
    const { node } = this.deps;
    const out: RoomView[] = [...this.publicRooms()];
    const me = await this.deps.memberIdentity(user);
    await this.scan();
    const mine = toHex(keyId(me.agreementKey));
    for (const id of this.headers) {
      const record = await node.store.get(fromHex(id));
      if (!record) {
        this.headers.delete(id); // expired
        continue;
      }
      let forMe = false;
      try {
        forMe = sealedRecipients(record.payload).some((r) => toHex(r) === mine);
      } catch {
        forMe = false; // a malformed seal is nobody's room
      }
      if (!forMe) continue;
      const room = this.roomOf(record, me);
      if (room) out.push(room);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  async createRoom(user: string, input: { name: string; members?: string[] }): Promise<{ id: string }> {
    const { node } = this.deps;
    const name = input.name.trim();
    if (name.length === 0 || [...name].length > MAX_ROOM_NAME_CHARS) {
      throw new AppError('bad_room_name', `a room name has 1 to ${MAX_ROOM_NAME_CHARS} characters`);
    }
    // A name is one line of text: no control characters, no bidi overrides that make it read otherwise than it is.
    if (/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(name)) {
      throw new AppError('bad_room_name', 'a room name is one line of plain text, without control characters');
    }
    const me = await this.deps.memberIdentity(user);
    if (input.members === undefined) {
      const replica = await node.createDocument(me, { type: ROOM_TYPE, name, writers: 'anyone' });
      return { id: toHex(replica.feed) };
    }
    const members = [...new Set([this.address(user), ...input.members.map((a) => a.trim().toLowerCase())])];
    if (members.length > MAX_RECIPIENTS) throw new AppError('too_many_members', `a private room has at most ${MAX_RECIPIENTS} members`);
    const keys = members.map((address) => {
      const known = node.directory.member(address);
      if (!known) throw new AppError('unknown_member', `"${address}" is not a member this node knows yet`);
      return known.agreementKey;
    });
    const nonce = node.random(8);
    const feed = deriveFeedId(me.id, nonce);
    await node.publish(me, {
      kind: RecordKind.Message,
      feed,
      sealed: true,
      priority: Priority.Urgent,
      ttl: PRIVATE_CHAT_TTL_S,
      payload: seal(encodeChatPayload({ t: 'room', n: name, m: members, k: toHex(nonce) }), keys, me.id, node.random),
    });
    return { id: toHex(feed) };
  }

  /** The room: a public document, or a private room `me` is a member of; else room_not_found. */
  private async findRoom(room: string, me: Identity): Promise<{ replica: ReturnType<MeshNode['documents']['get']> } | { private: PrivateRoom; records: Record[] }> {
    if (!ROOM_ID.test(room)) throw new AppError('room_not_found', 'there is no such room', 404);
    const replica = this.deps.node.documents.get(room);
    if (replica?.meta?.type === ROOM_TYPE) return { replica };
    const records = await this.deps.node.store.byFeed(fromHex(room));
    for (const record of records) {
      const found = this.roomOf(record, me);
      if (found && found.members.includes(this.addressOf(me))) return { private: found, records };
    }
    throw new AppError('room_not_found', 'there is no such room', 404);
  }

  private readonly identityAddress = new Map<string, string>();
  private addressOf(me: Identity): string {
    return this.identityAddress.get(toHex(me.id)) ?? '';
  }

  private async me(user: string): Promise<Identity> {
    const me = await this.deps.memberIdentity(user);
    this.identityAddress.set(toHex(me.id), this.address(user));
    return me;
  }

  async messages(user: string, room: string, limit?: number): Promise<ChatMessageView[]> {
    const all = await this.allMessages(user, room);
    return limit !== undefined && all.length > limit ? all.slice(all.length - limit) : all;
  }

  /** A public room's messages, oldest first: from the cache while the room and the names known stay as they were. */
  private async publicMessages(replica: NonNullable<ReturnType<MeshNode['documents']['get']>>): Promise<ChatMessageView[]> {
    const room = toHex(replica.feed);
    const cached = this.roomCache.get(room);
    const version = this.roomVersions.get(room) ?? 0;
    if (cached && cached.doc === replica.ydoc && cached.version === version && cached.names === this.names.version && replica.ydoc.store.pendingStructs === null) {
      this.roomCache.delete(room); // most recently used last
      this.roomCache.set(room, cached);
      return cached.list;
    }
    const doc = await settledDoc(this.deps.node, replica);
    const items = itemsWithClient(doc.getArray<unknown>('messages'));
    const kept: Array<{ date: number; client: number; clock: number; from: string; text: string }> = [];
    for (const { value, client, clock } of items) {
      const v = value as { text?: unknown; date?: unknown } | null;
      const from = this.names.ofClient(client);
      if (!from || typeof v?.text !== 'string' || !isDateMs(v.date)) continue;
      kept.push({ date: v.date, client, clock, from, text: v.text });
    }
    // Stable: messages of the same millisecond keep the document's order.
    kept.sort((a, b) => a.date - b.date);
    const list = kept.map((m) => ({ id: `${m.client.toString(36)}.${m.clock}`, from: m.from, text: m.text.slice(0, MAX_TEXT_CHARS), date: new Date(m.date).toISOString() }));
    this.roomCache.delete(room);
    this.roomCache.set(room, { doc, version, names: this.names.version, list });
    this.roomVersions.set(room, version);
    while (this.roomCache.size > ROOM_CACHE_SIZE) this.roomCache.delete(this.roomCache.keys().next().value!);
    return list;
  }

  private async allMessages(user: string, room: string): Promise<ChatMessageView[]> {
    const me = await this.me(user);
    const found = await this.findRoom(room, me);
    if ('replica' in found) return this.publicMessages(found.replica!);
    const out: ChatMessageView[] = [];
    for (const record of found.records) {
      if (record.kind !== RecordKind.Message || !record.sealed) continue;
      const value = this.openRecord(record, me);
      if (!value || value.t !== 'msg') continue;
      const from = this.names.ofKey(record.author);
      if (!found.private.members.includes(from)) continue;
      out.push({ id: toHex(record.id), from, text: value.x.slice(0, MAX_TEXT_CHARS), date: new Date(record.time * 1000).toISOString() });
    }
    return out.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.id.localeCompare(b.id)));
  }

  async post(user: string, room: string, text: string): Promise<{ id: string }> {
    const { node } = this.deps;
    if (text.trim().length === 0) throw new AppError('empty_message', 'write something first');
    if (text.length > MAX_TEXT_CHARS) throw new AppError('message_too_long', `a message has at most ${MAX_TEXT_CHARS} characters`);
    const me = await this.me(user);
    const found = await this.findRoom(room, me);
    if ('replica' in found) {
      await settledDoc(node, found.replica!); // an author whose own updates are stuck could not write
      const client = clientIdFor(me.id);
      let clock = 0;
      await node.updateDocument(me, found.replica!.feed, (doc) => {
        clock = Y.getState(doc.store, client);
        doc.getArray('messages').push([{ text, date: (this.deps.nowMs ?? Date.now)() }]);
      });
      return { id: `${client.toString(36)}.${clock}` };
    }
    const keys = found.private.members.map((address) => node.directory.member(address)?.agreementKey).filter((k): k is Uint8Array => k !== undefined);
    const record = await node.publish(me, {
      kind: RecordKind.Message,
      feed: fromHex(room),
      sealed: true,
      priority: Priority.Urgent,
      ttl: PRIVATE_CHAT_TTL_S,
      payload: seal(encodeChatPayload({ t: 'msg', x: text }), keys, me.id, node.random),
    });
    return { id: toHex(record.id) };
  }
}
