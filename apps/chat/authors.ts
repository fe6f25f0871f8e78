/**
 * Names for authors: who signed a record, or whose Yjs client id wrote an item of a document,
 * as `member@household` (or the household's name for a household key). Documents bind each
 * author to one Yjs client id (mesh/document-update.ts), so an item's client id says who
 * wrote it as surely as a signature — no "from" field the writer could forge.
 */
import { toHex } from '../../mesh/bytes.ts';
import { clientIdFor } from '../../mesh/document-update.ts';
import { keyId } from '../../mesh/identity.ts';
import type { MeshNode } from '../../mesh/node.ts';
import type * as Y from 'yjs';

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

  /** Changes whenever the names known change (a cache of named items is stale then). */
  get version(): number {
    this.refresh();
    return this.seen;
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
