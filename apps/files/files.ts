/**
 * Files shared through the mesh as blobs (DESIGN.md): the bytes are cut into chunks of
 * CHUNK_BYTES, each a record of kind BlobChunk at Priority.Bulk in a feed of its own
 * (seq 0..n-1), and a signed manifest (kind BlobManifest) names the chunks by the SHA-256 of
 * their record ids in order. Records are content-addressed, so the manifest pins every byte:
 * a download checks the chunks it found against it before sending anything.
 *
 * Sharing: `shared_with: null` is the neighbourhood (plain records, like a blog); a list of
 * members seals the manifest and every chunk to them and to the uploader.
 *
 * Uploads are streamed: each chunk is staged in the node-local store (`file-upload/<upload
 * id>/<seq>`, never synced) as soon as it is full, so memory holds one chunk, never the file.
 * Only a whole upload is published: its chunks become records, then the manifest. An upload
 * that fails — over `maxBytes` (413 file_too_large), a connection dropped mid-way, an unknown
 * member — removes what it staged, so no chunk without a manifest is left in the store or sent
 * over the air; stages left by a crash are removed when the next Files starts, stages a full
 * disk would not let go by the next upload. An upload also stops (507 disk_full) before the
 * disk is down to the last 2 % (`reserveFor`): a file must not take the room mail and chat need.
 *
 * Manifest payload, version 1: byte 0 = 1, then UTF-8 JSON
 * `{"n":name,"s":size,"c":chunks,"f":chunk-feed-hex,"d":sha256(chunk ids)-hex,"h":sha256(bytes)-hex,"w":[address..]|null}`.
 */
import { createHash } from 'node:crypto';
import { fromHex, fromUtf8, toHex, utf8 } from '../../mesh/bytes.ts';
import { keyId, type Identity } from '../../mesh/identity.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { MAX_PAYLOAD, Priority, RecordKind, type Record } from '../../mesh/record.ts';
import { MAX_RECIPIENTS, open, seal, sealedRecipients, sealOverhead } from '../../mesh/seal.ts';
import { AppError } from '../errors.ts';
import type { FileUpload, FileView, FilesService } from '../daemon/services.ts';
import { AuthorNames } from '../chat/authors.ts';
import { sanitizeFileName } from './file-name.ts';

/** Chunk size: a sealed chunk to the most recipients still fits a record. */
export const CHUNK_BYTES = MAX_PAYLOAD - sealOverhead(MAX_RECIPIENTS);
export const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;
const MANIFEST_VERSION = 1;
const FILE_ID = /^[0-9a-f]{64}$/;
/** Node-local prefix of chunks staged by uploads under way. */
const STAGE = 'file-upload/';

interface Manifest {
  n: string;
  s: number;
  c: number;
  f: string;
  d: string;
  h: string;
  w: string[] | null;
}

export function encodeManifest(m: Manifest): Uint8Array {
  const json = utf8(JSON.stringify(m));
  const out = new Uint8Array(json.length + 1);
  out[0] = MANIFEST_VERSION;
  out.set(json, 1);
  return out;
}

/** Decode a manifest payload; null for anything malformed. */
export function decodeManifest(bytes: Uint8Array): Manifest | null {
  if (bytes.length < 2 || bytes[0] !== MANIFEST_VERSION) return null;
  try {
    const m = JSON.parse(fromUtf8(bytes.subarray(1))) as Partial<Manifest>;
    const hex = (v: unknown, n: number) => typeof v === 'string' && new RegExp(`^[0-9a-f]{${n}}$`).test(v);
    if (typeof m.n !== 'string' || !Number.isSafeInteger(m.s) || m.s! < 0 || !Number.isSafeInteger(m.c) || m.c! < 0) return null;
    if (!hex(m.f, 16) || !hex(m.d, 64) || !hex(m.h, 64)) return null;
    if (m.w !== null && !(Array.isArray(m.w) && m.w.every((a) => typeof a === 'string'))) return null;
    return { n: sanitizeFileName(m.n), s: m.s!, c: m.c!, f: m.f!, d: m.d!, h: m.h!, w: m.w };
  } catch {
    return null;
  }
}

/** The feed a member's file manifests go in. */
export function filesFeed(author: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(utf8('citizen-files-v1')).update(author).digest().subarray(0, 8));
}

export interface FilesDeps {
  node: MeshNode;
  memberIdentity(name: string): Promise<Identity>;
  maxBytes?: number;
  /**
   * The disk under the store: bytes free and its size, or undefined where unknown. An upload
   * stops while `reserveFor(size)` bytes are still free, so a file never takes the room that
   * mail and chat need.
   */
  disk?: () => { free: number; size: number } | undefined;
}

/** Room an upload leaves free on a disk of `size` bytes: 2 %, at least 256 KiB, at most 64 MiB. */
export function reserveFor(size: number): number {
  return Math.min(64 * 1024 * 1024, Math.max(256 * 1024, Math.floor(size * 0.02)));
}

export class Files implements FilesService {
  readonly maxBytes: number;
  private readonly names: AuthorNames;
  /** Manifest record ids (hex) this node holds, newest last. */
  private readonly manifests = new Set<string>();
  private readonly completeIds = new Set<string>();
  private readonly opened = new Map<string, Manifest | null>();
  private scanned: Promise<void> | null = null;

  /** Uploads under way (their stages are not stale). */
  private readonly uploading = new Set<string>();
  /** Stages a crash left behind, being removed (an upload waits for it). */
  private staleRemoved: Promise<void>;
  /** An upload's stage could not be removed (a full disk refuses deletes too): the next upload tries again. */
  private leftovers = false;

  constructor(private readonly deps: FilesDeps) {
    this.maxBytes = deps.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.names = new AuthorNames(deps.node);
    deps.node.on('record', (record) => {
      if (record.kind === RecordKind.BlobManifest) this.manifests.add(toHex(record.id));
    });
    this.staleRemoved = this.removeStages(STAGE).catch(() => undefined);
  }

  /** Remove staged chunks under `prefix` (one upload's, or all but the uploads under way). */
  private async removeStages(prefix: string): Promise<void> {
    const { store } = this.deps.node;
    for (const [key] of await store.listLocal(prefix)) {
      const upload = key.slice(STAGE.length, key.indexOf('/', STAGE.length));
      if (prefix === STAGE && this.uploading.has(upload)) continue;
      await store.deleteLocal(key);
    }
  }

  /** Find the manifests already in the store (once, on first use). */
  private scan(): Promise<void> {
    this.scanned ??= (async () => {
      for await (const record of this.deps.node.store.records()) {
        if (record.kind === RecordKind.BlobManifest) this.manifests.add(toHex(record.id));
      }
    })();
    return this.scanned;
  }

  private address(user: string): string {
    return `${user}@${this.deps.node.householdName}`;
  }

  /** The manifest if `me` may read it (public, or sealed to `me`). */
  private manifestOf(record: Record, me: Identity): Manifest | null {
    if (record.kind !== RecordKind.BlobManifest) return null;
    if (!record.sealed) {
      const key = `public/${toHex(record.id)}`;
      if (!this.opened.has(key)) this.opened.set(key, decodeManifest(record.payload));
      return this.opened.get(key)!;
    }
    const key = `${toHex(me.id)}/${toHex(record.id)}`;
    if (!this.opened.has(key)) {
      let m: Manifest | null = null;
      try {
        const mine = sealedRecipients(record.payload).some((r) => toHex(r) === toHex(keyId(me.agreementKey)));
        m = mine ? decodeManifest(open(record.payload, me, record.author)) : null;
      } catch {
        m = null;
      }
      this.opened.set(key, m);
    }
    return this.opened.get(key)!;
  }

  private async view(record: Record, m: Manifest): Promise<FileView> {
    const id = toHex(record.id);
    if (!this.completeIds.has(id)) {
      const held = (await this.deps.node.store.byAuthor(record.author, fromHex(m.f))).filter((r) => r.kind === RecordKind.BlobChunk && r.seq < m.c);
      if (held.length === m.c) this.completeIds.add(id);
    }
    return {
      id,
      name: m.n,
      size: m.s,
      owner: this.names.ofKey(record.author),
      shared_with: m.w,
      complete: this.completeIds.has(id),
      date: new Date(record.time * 1000).toISOString(),
    };
  }

  async list(user: string): Promise<FileView[]> {
    await this.scan();
    const me = await this.deps.memberIdentity(user);
    const out: FileView[] = [];
    for (const id of this.manifests) {
      const record = await this.deps.node.store.get(fromHex(id));
      if (!record) {
        this.manifests.delete(id); // expired
        continue;
      }
      const m = this.manifestOf(record, me);
      if (m) out.push(await this.view(record, m));
    }
    return out.sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : a.id.localeCompare(b.id)));
  }

  async upload(user: string, input: FileUpload): Promise<{ id: string; name: string; size: number }> {
    const { node } = this.deps;
    const name = sanitizeFileName(input.name);
    const me = await this.deps.memberIdentity(user);
    let keys: Uint8Array[] | null = null;
    let shared: string[] | null = null;
    if (input.shareWith !== null) {
      shared = [...new Set([this.address(user), ...input.shareWith.map((a) => a.trim().toLowerCase()).filter((a) => a !== '')])];
      if (shared.length > MAX_RECIPIENTS) throw new AppError('too_many_recipients', `a file can be shared with at most ${MAX_RECIPIENTS - 1} members`);
      keys = shared.map((address) => {
        const known = node.directory.member(address);
        if (!known) throw new AppError('unknown_member', `"${address}" is not a member this node knows yet`);
        return known.agreementKey;
      });
    }
    if (this.leftovers) {
      this.leftovers = false;
      this.staleRemoved = this.staleRemoved.then(() => this.removeStages(STAGE)).catch(() => {
        this.leftovers = true;
      });
    }
    await this.staleRemoved;
    const upload = toHex(node.random(8));
    const stage = `${STAGE}${upload}/`;
    this.uploading.add(upload);
    try {
      const whole = createHash('sha256');
      let size = 0;
      let chunks = 0;
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      const keep = async (bytes: Uint8Array) => {
        this.checkRoom();
        await node.store.putLocal(`${stage}${String(chunks).padStart(8, '0')}`, Buffer.from(bytes).toString('base64'));
        chunks++;
      };
      for await (const part of input.body) {
        size += part.length;
        if (size > this.maxBytes) {
          throw new AppError('file_too_large', `a file may have at most ${Math.floor(this.maxBytes / 1024 / 1024)} MiB`, 413);
        }
        whole.update(part);
        pending.push(part);
        pendingBytes += part.length;
        while (pendingBytes >= CHUNK_BYTES) {
          const joined = Buffer.concat(pending);
          await keep(new Uint8Array(joined.subarray(0, CHUNK_BYTES)));
          const rest = joined.subarray(CHUNK_BYTES);
          pending = rest.length ? [new Uint8Array(rest)] : [];
          pendingBytes = rest.length;
        }
      }
      if (pendingBytes > 0 || chunks === 0) await keep(new Uint8Array(Buffer.concat(pending)));
      // The whole file is here: publish its chunks in order, then the manifest that names them.
      const feed = node.random(8);
      const ids = createHash('sha256');
      for (let seq = 0; seq < chunks; seq++) {
        // One chunk in memory at a time, as while it arrived.
        const key = `${stage}${String(seq).padStart(8, '0')}`;
        const value = await node.store.getLocal(key);
        if (value === undefined) throw new AppError('upload_lost', 'a part of the upload went missing before it was stored', 500);
        const bytes = new Uint8Array(Buffer.from(value, 'base64'));
        const record = await node.publish(me, {
          kind: RecordKind.BlobChunk,
          feed,
          sealed: keys !== null,
          priority: Priority.Bulk,
          payload: keys ? seal(bytes, keys, me.id, node.random) : bytes,
        });
        ids.update(record.id);
        await node.store.deleteLocal(key);
      }
      const manifest = encodeManifest({ n: name, s: size, c: chunks, f: toHex(feed), d: ids.digest('hex'), h: whole.digest('hex'), w: shared });
      const record = await node.publish(me, {
        kind: RecordKind.BlobManifest,
        feed: filesFeed(me.id),
        sealed: keys !== null,
        priority: Priority.Low,
        payload: keys ? seal(manifest, keys, me.id, node.random) : manifest,
      });
      this.manifests.add(toHex(record.id));
      return { id: toHex(record.id), name, size };
    } finally {
      this.uploading.delete(upload);
      // Whatever was not published (a failed or aborted upload) goes.
      await this.removeStages(stage).catch(() => {
        this.leftovers = true;
      });
    }
  }

  /** Refuse to stage more of a file once the disk is down to the room kept for mail and chat. */
  private checkRoom(): void {
    const disk = this.deps.disk?.();
    if (!disk) return;
    const reserve = reserveFor(disk.size);
    // A chunk is staged (base64) and then published as a record: about three times its size.
    if (disk.free - 3 * CHUNK_BYTES < reserve) {
      throw new AppError(
        'disk_full',
        `the household's disk is full (the last ${Math.round(reserve / 1024)} KiB are kept for mail and chat), so this file was not saved; free some space on it and try again`,
        507,
      );
    }
  }

  async open(user: string, id: string): Promise<{ view: FileView; chunks: AsyncIterable<Uint8Array> }> {
    const notFound = () => new AppError('file_not_found', 'there is no such file here', 404);
    if (!FILE_ID.test(id)) throw notFound();
    const { node } = this.deps;
    const record = await node.store.get(fromHex(id));
    const me = await this.deps.memberIdentity(user);
    const m = record ? this.manifestOf(record, me) : null;
    if (!record || !m) throw notFound();
    const held = (await node.store.byAuthor(record.author, fromHex(m.f))).filter((r) => r.kind === RecordKind.BlobChunk && r.seq < m.c);
    held.sort((a, b) => a.seq - b.seq);
    if (held.length !== m.c) throw new AppError('file_incomplete', `${held.length} of ${m.c} parts of this file have reached this node so far`, 409);
    const digest = createHash('sha256');
    for (const chunk of held) digest.update(chunk.id);
    if (digest.digest('hex') !== m.d) throw new AppError('file_corrupt', 'the parts held here do not match the file\'s signed manifest', 409);
    const view = await this.view(record, m);
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (const chunk of held) yield chunk.sealed ? open(chunk.payload, me, chunk.author) : chunk.payload;
    }
    return { view, chunks: chunks() };
  }
}
