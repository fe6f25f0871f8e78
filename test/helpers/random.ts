/** Seeded randomness for tests: replayable, printed on failure by the tests that use it. */
import type { RandomBytes } from '../../mesh/identity.ts';

/** A small, fast PRNG (mulberry32) as a byte source. Not for real keys: tests only. */
export function seededRandom(seed: number): RandomBytes {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
    return out;
  };
}

/** Fisher–Yates with a seeded byte source. */
export function shuffle<T>(items: T[], random: RandomBytes): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const b = random(4);
    const j = (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** A seeded uniform [0, 1) source (mulberry32), for code that takes `random: () => number`. */
export function seededFloat(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
