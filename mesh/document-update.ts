/**
 * Checks on the Yjs update inside a DocumentUpdate record, made before it may touch a Y.Doc.
 *
 * Yjs converges when every (client, clock) names one piece of content everywhere. A signed
 * record proves who wrote it, not which Yjs client ids it uses, so a writer could otherwise
 * publish content under someone else's client id and make replicas disagree depending on
 * which arrived first. Here each author owns exactly one Yjs client id per document, derived
 * from the author's key id (53 bits, so grinding a key to collide with a victim is out of
 * reach), and an update may only create structs of its author's client. Deletions may name
 * any client: writers may delete each other's content, and deletions commute.
 *
 * The update must decode completely (structs and delete set), use no Skip structs and no
 * sub-documents, no item may name its own client at its own or a later clock as origin or
 * parent (Yjs would throw on it later, while applying someone else's update), and the delete
 * set must list each client's ranges in ascending order without overlaps (Yjs applies them in
 * the order given, so out of order they delete differently on different replicas). The result
 * is the clock range its structs occupy. A SpanIndex of those ranges spots two different
 * records claiming the same clocks (a fork: a cloned or stolen key, or a device that lost its
 * state), which the replica then leaves out.
 */
import * as Y from 'yjs';
import { MeshError } from './errors.ts';
import { KEY_ID_LENGTH } from './identity.ts';

/** The Yjs client id a replica uses when it is not writing: no author maps to it. */
export const READER_CLIENT_ID = 0;

/** The clocks `[from, to)` of one client that an update creates. */
export interface UpdateSpan {
  readonly client: number;
  readonly from: number;
  readonly to: number;
}

/** The Yjs client id of an author in every document: 53 bits of the key id, never 0. */
export function clientIdFor(author: Uint8Array): number {
  if (author.length !== KEY_ID_LENGTH) throw new MeshError('DOCUMENT_INVALID', `author id must be ${KEY_ID_LENGTH} bytes`);
  const view = new DataView(author.buffer, author.byteOffset, author.byteLength);
  const id = (view.getUint32(0) & 0x1fffff) * 2 ** 32 + view.getUint32(4);
  return id === READER_CLIENT_ID ? 1 : id;
}

/**
 * Decode a Yjs (v1) update from `author` and check it. Returns the span of clocks it creates,
 * or null for an update that only deletes. Throws MeshError: DOCUMENT_BAD_UPDATE (does not
 * decode), DOCUMENT_FOREIGN_CLIENT (creates structs of another client), DOCUMENT_UNSUPPORTED
 * (Skip structs or sub-documents).
 */
export function inspectUpdate(update: Uint8Array, author: Uint8Array): UpdateSpan | null {
  let decoded: ReturnType<typeof Y.decodeUpdate>;
  try {
    // Reads every struct and the delete set: anything Yjs would choke on throws here,
    // before the update is applied (a half-applied update cannot be taken back).
    decoded = Y.decodeUpdate(update);
  } catch (cause) {
    throw new MeshError('DOCUMENT_BAD_UPDATE', 'document update is not a valid Yjs update', { cause });
  }
  for (const ranges of decoded.ds.clients.values()) {
    if (!rangesAscend(ranges)) {
      throw new MeshError('DOCUMENT_BAD_UPDATE', 'document update deletes ranges of a client out of order or overlapping');
    }
  }
  const client = clientIdFor(author);
  let from = Number.POSITIVE_INFINITY;
  let to = 0;
  for (const struct of decoded.structs) {
    if (struct.id.client !== client) {
      throw new MeshError('DOCUMENT_FOREIGN_CLIENT', "document update creates content under another author's client id");
    }
    if (struct instanceof Y.Skip || (struct instanceof Y.Item && struct.content instanceof Y.ContentDoc)) {
      throw new MeshError('DOCUMENT_UNSUPPORTED', 'document update holds a Skip struct or a sub-document');
    }
    if (struct instanceof Y.Item && referencesOwnFuture(struct)) {
      throw new MeshError('DOCUMENT_BAD_UPDATE', 'document update holds a struct that refers to its own or a later clock of its author');
    }
    const end = struct.id.clock + struct.length;
    if (!(struct.length >= 1) || !Number.isSafeInteger(end)) {
      throw new MeshError('DOCUMENT_BAD_UPDATE', 'document update holds a struct of impossible length');
    }
    from = Math.min(from, struct.id.clock);
    to = Math.max(to, end);
  }
  return decoded.structs.length === 0 ? null : { client, from, to };
}

/**
 * True when a client's deleted ranges are in ascending order and do not overlap, as Yjs
 * writes them. Yjs applies a delete set in the order it is written and keeps what it cannot
 * apply yet for later; with ranges out of order, what it deletes depends on which updates
 * arrived before, and replicas that got the same records in another order disagree.
 */
function rangesAscend(ranges: ReadonlyArray<{ clock: number; len: number }>): boolean {
  let end = 0;
  for (const { clock, len } of ranges) {
    if (clock < end || !(len >= 1) || !Number.isSafeInteger(clock + len)) return false;
    end = clock + len;
  }
  return true;
}

/**
 * True when an item names its own client at its own or a later clock as origin, right origin
 * or parent. Yjs writes an item only next to or inside content that already exists, so an
 * honest reference to the author's own client is always to an earlier clock. A crafted one
 * cannot be integrated: Yjs throws as soon as the item's other references resolve, which may be
 * inside the Y.applyUpdate of someone else's honest update, and would drop that one instead.
 */
function referencesOwnFuture(item: Y.Item): boolean {
  const { client, clock } = item.id;
  const parent = item.parent instanceof Y.ID ? item.parent : null;
  return [item.origin, item.rightOrigin, parent].some((ref) => ref !== null && ref.client === client && ref.clock >= clock);
}

/**
 * The clock spans of a document's counted updates, per Yjs client, sorted by first clock,
 * to find the updates another one overlaps. Honest spans never overlap, so a lookup walks
 * back only over spans that could still reach the new one (bounded by the longest span).
 */
export class SpanIndex<T extends { readonly span: UpdateSpan | null }> {
  readonly #lists = new Map<number, { items: T[]; maxLength: number; maxTo: number }>();

  add(item: T): void {
    const span = item.span;
    if (!span) return;
    let list = this.#lists.get(span.client);
    if (!list) this.#lists.set(span.client, (list = { items: [], maxLength: 0, maxTo: 0 }));
    list.items.splice(firstStartingAt(list.items, span.from), 0, item);
    list.maxLength = Math.max(list.maxLength, span.to - span.from);
    list.maxTo = Math.max(list.maxTo, span.to);
  }

  /** Indexed items other than `self` whose spans overlap `span`. */
  overlapping(span: UpdateSpan, self?: T): T[] {
    const list = this.#lists.get(span.client);
    if (!list) return [];
    const found: T[] = [];
    for (let i = firstStartingAt(list.items, span.to) - 1; i >= 0; i--) {
      const item = list.items[i]!;
      const other = item.span!;
      if (other.from + list.maxLength <= span.from) break;
      if (other.to > span.from && item !== self) found.push(item);
    }
    return found;
  }

  /** One past the highest clock of `client` that any indexed span claims (0 if none). */
  end(client: number): number {
    return this.#lists.get(client)?.maxTo ?? 0;
  }

  clear(): void {
    this.#lists.clear();
  }
}

/** Index of the first item whose span starts at or after `clock` (items sorted by start). */
function firstStartingAt(items: ReadonlyArray<{ readonly span: UpdateSpan | null }>, clock: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid]!.span!.from < clock) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
