/**
 * Live updates for the portal: turns the node's `record` events into small app events
 * ("something changed in room X") for each logged-in member who may see it. Sealed records
 * reach only members whose key they are sealed to; nothing carries content, so a page asks
 * the API again.
 */
import { toHex } from '../../mesh/bytes.ts';
import { keyId } from '../../mesh/identity.ts';
import type { MeshNode } from '../../mesh/node.ts';
import { RecordKind, type Record } from '../../mesh/record.ts';
import { sealedRecipients } from '../../mesh/seal.ts';
import type { AppEvent, EventsService } from './services.ts';

export interface EventsDeps {
  node: MeshNode;
  /** The member's X25519 key id, hex (for sealed records). */
  agreementKeyId(user: string): Promise<string>;
}

/** Which app a record concerns, and whether it is sealed. */
function classify(node: MeshNode, record: Record): AppEvent | null {
  switch (record.kind) {
    case RecordKind.Mail:
      return { type: 'mail' };
    case RecordKind.Message:
      return { type: 'chat', id: toHex(record.feed) };
    case RecordKind.BlobManifest:
      return { type: 'files' };
    case RecordKind.Directory:
      return { type: 'directory' };
    case RecordKind.DocumentGenesis:
    case RecordKind.DocumentUpdate: {
      const type = node.documents.get(record.feed)?.meta?.type;
      if (type === 'chat-room') return { type: 'chat', id: toHex(record.feed) };
      if (type === 'blog-post' || type === 'blog-comments') return { type: 'blog' };
      return null;
    }
    default:
      return null;
  }
}

export function createEvents(deps: EventsDeps): EventsService & { close(): void } {
  const listeners = new Set<{ user: string; keyId: Promise<string>; listener: (e: AppEvent) => void }>();
  const onRecord = (record: Record) => {
    const event = classify(deps.node, record);
    if (!event || listeners.size === 0) return;
    let recipients: Set<string> | null = null;
    if (record.sealed) {
      try {
        recipients = new Set(sealedRecipients(record.payload).map(toHex));
      } catch {
        return;
      }
    }
    for (const entry of listeners) {
      if (!recipients) entry.listener(event);
      else void entry.keyId.then((id) => recipients!.has(id) && entry.listener(event), () => undefined);
    }
  };
  deps.node.on('record', onRecord);
  return {
    subscribe(user, listener) {
      const entry = { user, keyId: deps.agreementKeyId(user), listener };
      listeners.add(entry);
      return () => listeners.delete(entry);
    },
    close() {
      deps.node.off('record', onRecord);
      listeners.clear();
    },
  };
}

/** The X25519 key id (hex) of an agreement key. */
export const agreementKeyHex = (agreementKey: Uint8Array): string => toHex(keyId(agreementKey));
