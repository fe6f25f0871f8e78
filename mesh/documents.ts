/**
 * The documents a node holds, keyed by feed id: routes each document record to its replica,
 * creating replicas as records for new feeds arrive. No I/O and no globals: the node gives it
 * records (from its store at start-up, from sync afterwards) and publishes what it returns.
 *
 * Memory is bounded two ways: at most `maxDocuments` replicas, and one PendingBudget shared by
 * all of them for records that wait (updates before their genesis or grant), so records for
 * made-up feeds cannot pile up without limit.
 */
import { toHex } from './bytes.ts';
import { MeshError } from './errors.ts';
import type { Identity, RandomBytes } from './identity.ts';
import { RecordKind, type Priority, type Record } from './record.ts';
import { createDocument, DocumentReplica, PendingBudget, type ApplyOutcome, type DocumentInit } from './document.ts';

export interface DocumentsOptions {
  /** Most replicas held at once (default 10,000). */
  maxDocuments?: number;
  /** Most records waiting across all replicas (default 4,096). */
  maxPendingRecords?: number;
  /** Most bytes of waiting records across all replicas (default 4 MiB). */
  maxPendingBytes?: number;
}

/** An apply outcome with the replica the record went to (null when none took it). */
export interface RoutedOutcome extends ApplyOutcome {
  readonly replica: DocumentReplica | null;
}

const DOCUMENT_KINDS = new Set([RecordKind.DocumentGenesis, RecordKind.DocumentAcl, RecordKind.DocumentUpdate]);

/** A collection of document replicas keyed by feed id (hex). */
export class Documents implements Iterable<DocumentReplica> {
  readonly budget: PendingBudget;
  readonly maxDocuments: number;
  readonly #replicas = new Map<string, DocumentReplica>();

  constructor(options: DocumentsOptions = {}) {
    this.maxDocuments = options.maxDocuments ?? 10_000;
    if (!Number.isSafeInteger(this.maxDocuments) || this.maxDocuments < 1) {
      throw new MeshError('DOCUMENT_INVALID', 'maxDocuments must be a positive integer');
    }
    this.budget = new PendingBudget(options.maxPendingRecords ?? 4096, options.maxPendingBytes ?? 4 * 1024 * 1024);
  }

  get size(): number {
    return this.#replicas.size;
  }

  /** The replica of a feed (bytes or hex), if held. */
  get(feed: Uint8Array | string): DocumentReplica | undefined {
    return this.#replicas.get(typeof feed === 'string' ? feed : toHex(feed));
  }

  /** The replica of a feed, created empty if needed. Throws DOCUMENT_LIMIT when full. */
  open(feed: Uint8Array): DocumentReplica {
    const key = toHex(feed);
    let replica = this.#replicas.get(key);
    if (!replica) {
      if (this.#replicas.size >= this.maxDocuments) throw new MeshError('DOCUMENT_LIMIT', 'too many documents held');
      replica = new DocumentReplica(feed, { budget: this.budget });
      this.#replicas.set(key, replica);
    }
    return replica;
  }

  /**
   * Route a (signature-checked) record to its document. Never throws for bad input: records
   * of other kinds are ignored with DOCUMENT_WRONG_KIND, records for a new feed when the
   * collection is full with DOCUMENT_LIMIT. A replica that ends up holding nothing is dropped.
   */
  apply(record: Record): RoutedOutcome {
    if (!DOCUMENT_KINDS.has(record.kind)) {
      const reason = new MeshError('DOCUMENT_WRONG_KIND', `record kind ${record.kind} is not a document record`);
      return { status: 'ignored', reason, rebuilt: false, replica: null };
    }
    const key = toHex(record.feed);
    const existing = this.#replicas.get(key);
    if (!existing && this.#replicas.size >= this.maxDocuments) {
      return { status: 'ignored', reason: new MeshError('DOCUMENT_LIMIT', 'too many documents held'), rebuilt: false, replica: null };
    }
    const replica = existing ?? this.open(record.feed);
    const result = replica.apply(record);
    if (!existing && replica.isEmpty) {
      this.#replicas.delete(key);
      return { ...result, replica: null };
    }
    return { ...result, replica };
  }

  /** Create a document as `author`: its replica (genesis applied) and the genesis to publish. */
  create(
    author: Identity,
    init: DocumentInit,
    options: { time: number; random: RandomBytes; ttl?: number; priority?: Priority },
  ): { replica: DocumentReplica; genesis: Record } {
    const { feed, genesis } = createDocument(author, init, options);
    const replica = this.open(feed);
    replica.apply(genesis);
    return { replica, genesis };
  }

  /** Drop a replica and give back its share of the pending budget. */
  forget(feed: Uint8Array | string): boolean {
    const key = typeof feed === 'string' ? feed : toHex(feed);
    const replica = this.#replicas.get(key);
    if (!replica) return false;
    replica.dispose();
    return this.#replicas.delete(key);
  }

  [Symbol.iterator](): Iterator<DocumentReplica> {
    return this.#replicas.values();
  }
}
