/**
 * "Has this record been heard on this link lately?" — a rolling pair of Bloom filters
 * (the `bloom-filters` package). It is the cheap question sync asks before pushing a record:
 * if a neighbour already broadcast it, everyone in range has it and we stay quiet.
 *
 * A Bloom filter fits because a wrong "yes" (false positive, ~1%) only delays a push until the
 * next reconciliation finds the difference, while memory stays fixed however much traffic
 * passes. Two generations rotate after `capacity` insertions or `maxAgeMs`, so entries are
 * remembered for at least one generation and at most two.
 */
import { createRequire } from 'node:module';
import type * as BloomFilters from 'bloom-filters';

// A CommonJS package whose exports Node's ESM loader cannot list; require it directly.
const { BloomFilter } = createRequire(import.meta.url)('bloom-filters') as typeof BloomFilters;
type BloomFilter = BloomFilters.BloomFilter;

export interface HeardFilterOptions {
  /** Insertions per generation. Default 4096. */
  capacity?: number;
  /** False-positive rate of a full generation. Default 0.01. */
  errorRate?: number;
  /** A generation older than this is retired. Default 600,000 ms. */
  maxAgeMs?: number;
}

export class HeardFilter {
  #current: BloomFilter;
  #previous: BloomFilter;
  #count = 0;
  #startedAt: number;
  readonly #capacity: number;
  readonly #errorRate: number;
  readonly #maxAgeMs: number;

  constructor(
    options: HeardFilterOptions,
    private readonly clock: { now(): number },
  ) {
    this.#capacity = options.capacity ?? 4096;
    this.#errorRate = options.errorRate ?? 0.01;
    this.#maxAgeMs = options.maxAgeMs ?? 600_000;
    this.#current = this.#fresh();
    this.#previous = this.#fresh();
    this.#startedAt = clock.now();
  }

  add(id: bigint): void {
    this.#rotateIfDue();
    this.#current.add(id.toString(36));
    this.#count++;
  }

  has(id: bigint): boolean {
    this.#rotateIfDue();
    const key = id.toString(36);
    return this.#current.has(key) || this.#previous.has(key);
  }

  /** Forget everything (e.g. the link went down: nobody may have heard what we sent). */
  clear(): void {
    this.#current = this.#fresh();
    this.#previous = this.#fresh();
    this.#count = 0;
    this.#startedAt = this.clock.now();
  }

  #fresh(): BloomFilter {
    return BloomFilter.create(this.#capacity, this.#errorRate);
  }

  #rotateIfDue(): void {
    if (this.#count < this.#capacity && this.clock.now() - this.#startedAt < this.#maxAgeMs) return;
    this.#previous = this.#current;
    this.#current = this.#fresh();
    this.#count = 0;
    this.#startedAt = this.clock.now();
  }
}
