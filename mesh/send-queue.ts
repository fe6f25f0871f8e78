/**
 * What a link sends next, when airtime is scarce.
 *
 * Control messages (beacons, reconciliation, wants) are small and keep the protocol moving,
 * so they go first, in order. Then fresh records (our own and eager forwards of new ones)
 * before repairs (records a summary or a WANT showed missing): on a radio at its duty-cycle
 * limit a backlog of repairs must not hold back what is new, or nothing is new for long.
 * Within each, records go by priority (Urgent → Normal → Low → Bulk: direct
 * mail and messages before chat, chat before blogs, blogs before file chunks) and, within a
 * priority, by deficit round robin over authors' households, each household's quantum
 * weighted by the trust this node has in it. A household flooding valid records therefore
 * gets its fair share of the link and no more; strangers get a small share.
 *
 * The queue is bounded in items and bytes. When full, the household holding the most queued
 * bytes at the lowest priority present loses its newest record first (a flood evicts itself).
 */

export interface QueuedRecord {
  /** The short id (first 8 bytes of the record id). */
  shortId: bigint;
  /** The encoded sync message to send. */
  message: Uint8Array;
  /** Record priority, 0 (urgent) .. 3 (bulk). (Once queued: its level, repairs + 4.) */
  priority: number;
  /** The author's household (hex key id), the unit of fairness. */
  household: string;
  /** A repair (answer to a summary or WANT), queued behind every fresh record. Default false. */
  repair?: boolean;
}

export interface SendQueueOptions {
  maxRecords?: number;
  maxBytes?: number;
  /** Bytes a household of weight 1 may send per round. Default 256. */
  quantum?: number;
  /** Weight of a household (trust); > 0. */
  weightOf: (household: string) => number;
}

interface HouseholdQueue {
  household: string;
  items: QueuedRecord[];
  bytes: number;
  deficit: number;
}

interface Level {
  /** Households with queued records, in round-robin order. */
  active: HouseholdQueue[];
  byHousehold: Map<string, HouseholdQueue>;
  /** Index in `active` of the household whose turn it is. */
  turn: number;
  /** Whether the household at `turn` already got its quantum for this turn. */
  credited: boolean;
}

/** Record priorities (0 urgent .. 3 bulk); fresh records use levels 0..3, repairs 4..7. */
const PRIORITIES = 4;
const LEVELS = 2 * PRIORITIES;

export class SendQueue {
  readonly #control: Uint8Array[] = [];
  readonly #levels: Level[] = Array.from({ length: LEVELS }, () => ({ active: [], byHousehold: new Map(), turn: 0, credited: false }));
  readonly #queued = new Map<bigint, QueuedRecord>();
  #bytes = 0;
  readonly #maxRecords: number;
  readonly #maxBytes: number;
  readonly #quantum: number;
  /** Records refused or evicted because the queue was full. */
  dropped = 0;

  constructor(private readonly options: SendQueueOptions) {
    this.#maxRecords = options.maxRecords ?? 2048;
    this.#maxBytes = options.maxBytes ?? 1 << 21;
    this.#quantum = options.quantum ?? 256;
  }

  get length(): number {
    return this.#control.length + this.#queued.size;
  }

  get recordCount(): number {
    return this.#queued.size;
  }

  pushControl(message: Uint8Array): void {
    this.#control.push(message);
    if (this.#control.length > 256) this.#control.shift(); // never unbounded; old control is stale anyway
  }

  has(shortId: bigint): boolean {
    return this.#queued.has(shortId);
  }

  /** Queue a record unless it is already queued; false when it was refused (full). */
  pushRecord(item: QueuedRecord): boolean {
    if (this.#queued.has(item.shortId)) return true;
    const rank = Math.min(Math.max(item.priority, 0), PRIORITIES - 1) + (item.repair ? PRIORITIES : 0);
    while (this.#queued.size >= this.#maxRecords || this.#bytes + item.message.length > this.#maxBytes) {
      if (!this.#evict(rank)) {
        this.dropped++;
        return false;
      }
    }
    const level = this.#levels[rank]!;
    let q = level.byHousehold.get(item.household);
    if (!q) {
      q = { household: item.household, items: [], bytes: 0, deficit: 0 };
      level.byHousehold.set(item.household, q);
      level.active.push(q);
    }
    q.items.push({ ...item, priority: rank });
    q.bytes += item.message.length;
    this.#bytes += item.message.length;
    this.#queued.set(item.shortId, q.items[q.items.length - 1]!);
    return true;
  }

  /** Drop a queued record (someone else sent it). Returns true when it was queued. */
  remove(shortId: bigint): boolean {
    const item = this.#queued.get(shortId);
    if (!item) return false;
    const level = this.#levels[item.priority]!;
    const q = level.byHousehold.get(item.household)!;
    q.items.splice(q.items.indexOf(item), 1);
    this.#forget(level, q, item);
    return true;
  }

  /** The next message to send, or undefined when there is none. */
  shift(): Uint8Array | undefined {
    return this.next()?.message;
  }

  /** The next message to send and, for a record, its short id; undefined when there is none. */
  next(): { message: Uint8Array; shortId?: bigint } | undefined {
    const control = this.#control.shift();
    if (control) return { message: control };
    for (const level of this.#levels) {
      if (level.active.length === 0) continue;
      return this.#nextFromLevel(level);
    }
    return undefined;
  }

  #nextFromLevel(level: Level): QueuedRecord {
    for (;;) {
      if (level.turn >= level.active.length) level.turn = 0;
      const q = level.active[level.turn]!;
      if (!level.credited) {
        q.deficit += this.#quantum * Math.max(this.options.weightOf(q.household), 0.01);
        level.credited = true;
      }
      const head = q.items[0]!;
      if (head.message.length <= q.deficit) {
        q.deficit -= head.message.length;
        q.items.shift();
        this.#forget(level, q, head);
        return head;
      }
      level.turn++;
      level.credited = false;
    }
  }

  #forget(level: Level, q: HouseholdQueue, item: QueuedRecord): void {
    q.bytes -= item.message.length;
    this.#bytes -= item.message.length;
    this.#queued.delete(item.shortId);
    if (q.items.length === 0) {
      const index = level.active.indexOf(q);
      level.active.splice(index, 1);
      level.byHousehold.delete(q.household);
      if (index < level.turn) level.turn--;
      else if (index === level.turn) level.credited = false;
    }
  }

  /** Evict one record at a level no more urgent than `incoming`; false when none may go. */
  #evict(incoming: number): boolean {
    for (let p = LEVELS - 1; p >= incoming; p--) {
      const level = this.#levels[p]!;
      if (level.active.length === 0) continue;
      let heaviest = level.active[0]!;
      for (const q of level.active) if (q.bytes > heaviest.bytes) heaviest = q;
      const victim = heaviest.items.pop()!;
      this.#forget(level, heaviest, victim);
      this.dropped++;
      return true;
    }
    return false;
  }
}
