/**
 * Names for authors: who signed a record, or whose Yjs client id wrote an item of a document,
 * as `member@household` (or the household's name for a household key). Documents bind each
 * author to one Yjs client id (mesh/document-update.ts), so an item's client id says who
 * wrote it as surely as a signature — no "from" field the writer could forge.
 */
import { toHex } from '../../mesh/bytes.ts';
import { clientIdFor } from '../../mesh/document-update.ts';
import { keyId } from '../../mesh/identity.ts';
import type { DocumentReplica } from '../../mesh/document.ts';
import type { MeshNode } from '../../mesh/node.ts';
import * as Y from 'yjs';
import { RecordKind } from '../../mesh/record.ts';

export class AuthorNames {
  private byClient = new Map<number, string>();
  private byKey = new Map<string, string>();
  private seen = -1;

  constructor(private readonly node: MeshNode) {}

  private refresh(): void {
    let count = 0;
    for (const h of this.node.directory.allHouseholds()) count += 1 + h.members.size;
    if (count === this.seen) return;
    this.seen = count;
    this.byClient = new Map();
    this.byKey = new Map();
    for (const h of this.node.directory.allHouseholds()) {
      const add = (signingKey: Uint8Array, name: string) => {
        const id = keyId(signingKey);
        this.byClient.set(clientIdFor(id), name);
        this.byKey.set(toHex(id), name);
      };
      add(h.signingKey, h.name);
      for (const m of h.members.values()) add(m.signingKey, `${m.name}@${h.name}`);
    }
  }

  /** The address behind a signing key id, or a short key id when the directory lacks it. */
  ofKey(id: Uint8Array): string {
    this.refresh();
    return this.byKey.get(toHex(id)) ?? `unknown-${toHex(id).slice(0, 8)}`;
  }

  /** The address behind a Yjs client id, or null when no known author has it. */
  ofClient(client: number): string | null {
    this.refresh();
    return this.byClient.get(client) ?? null;
  }
}

/** The live items of a Y.Array with the client id that created each (internal Yjs walk; read only). */
export function itemsWithClient<T>(array: Y.Array<T>): Array<{ value: T; client: number; clock: number }> {
  const out: Array<{ value: T; client: number; clock: number }> = [];
  for (let item = array._start; item !== null; item = item.right) {
    if (item.deleted || !item.countable) continue;
    const values = item.content.getContent() as T[];
    values.forEach((value, i) => out.push({ value, client: item!.id.client, clock: item!.id.clock + i }));
  }
  return out;
}

const repairedAt = new WeakMap<DocumentReplica, number>();

/**
 * A replica's Y.Doc for reading, repaired first when Yjs holds structs back although no record
 * waits. Two ways this happens (both seen after a restart, when the store hands a document's
 * updates over in id order, not in causal order): updates that arrived before the genesis
 * overflowed the shared pending budget and were ignored for good, so every later item waits
 * on them; or Yjs keeps structs pending after many out-of-order updates. The repair offers the
 * document's stored records again (duplicates are skipped) on the first read and whenever Yjs
 * is stuck, then, if Yjs still waits, hands it all the counted updates merged into one — at
 * most once per number of applied records. The real fix belongs in
 * mesh/ (reported); this keeps rooms and posts readable meanwhile.
 */
export async function settledDoc(node: MeshNode, replica: DocumentReplica): Promise<Y.Doc> {
  const counts = replica.counts;
  const firstRead = !repairedAt.has(replica);
  const stuck = replica.ydoc.store.pendingStructs !== null && counts.pending === 0 && repairedAt.get(replica) !== counts.applied;
  if (!firstRead && !stuck) return replica.ydoc;
  repairedAt.set(replica, counts.applied);
  // Records ignored while the budget was full may be anywhere in the document, tail included
  // (nothing in Yjs waits on those): the first read offers the stored ones again.
  const records = await node.store.byFeed(replica.feed);
  for (const record of records) node.documents.apply(record);
  const after = replica.counts;
  if (replica.ydoc.store.pendingStructs !== null && after.pending === 0 && after.excluded === 0) {
    // Every stored update counts (no fork left out), yet Yjs still waits: give it all of them
    // at once, merged, which it integrates whatever the order (applying known content is a no-op).
    const updates = records.filter((r) => r.kind === RecordKind.DocumentUpdate && replica.canWrite(r.author)).map((r) => r.payload);
    try {
      Y.applyUpdate(replica.ydoc, Y.mergeUpdates(updates), 'citizen-repair');
    } catch {
      // leave the replica as it was
    }
  }
  repairedAt.set(replica, replica.counts.applied);
  return replica.ydoc;
}
