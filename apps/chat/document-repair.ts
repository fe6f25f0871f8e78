/**
 * Reading a document safely after a restart (or a burst of out-of-order records): see
 * settledDoc. Shared by the chat and blog models.
 */
import type { DocumentReplica } from '../../mesh/document.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { RecordKind } from '../../mesh/record.ts';
import * as Y from 'yjs';

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
