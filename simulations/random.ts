/**
 * Seeded randomness for the simulator. Every random choice comes from a named stream derived
 * from the scenario seed, so the world (positions, shadowing, churn, traffic) is the same for
 * every strategy, and a strategy's own draws never shift the world's.
 *
 * The generator is sfc32 (Chris Doty-Humphrey's Small Fast Counter): 128 bits of state,
 * fast in JavaScript's 32-bit integer arithmetic, and good enough for simulation.
 */

/** A source of uniform numbers in [0, 1), with the distributions the simulator needs. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [a, b). */
  uniform(a: number, b: number): number;
  /** Exponential with the given mean. */
  exponential(mean: number): number;
  /** Normal with mean 0 and the given standard deviation. */
  normal(sd: number): number;
  /** `count` random bytes (for keys in the simulator only, never for real secrets). */
  bytes(count: number): Uint8Array;
}

/** 32-bit FNV-1a of a string, to turn stream names into seeds. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A random stream for `seed` and a purpose, e.g. `createRandom(1, 'traffic')`. */
export function createRandom(seed: number, stream: string): Random {
  let a = seed >>> 0;
  let b = Math.floor(seed / 2 ** 32) >>> 0;
  let c = hashString(stream);
  let d = 1;
  const raw = (): number => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) raw();
  let spare: number | undefined;
  return {
    next: raw,
    int: (n) => Math.floor(raw() * n),
    uniform: (x, y) => x + (y - x) * raw(),
    exponential: (mean) => -mean * Math.log(1 - raw()),
    normal(sd) {
      if (spare !== undefined) {
        const v = spare;
        spare = undefined;
        return v * sd;
      }
      // Box–Muller: two normals from two uniforms; keep the second for the next call.
      const u = 1 - raw();
      const v = raw();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v) * sd;
    },
    bytes(count) {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = Math.floor(raw() * 256);
      return out;
    },
  };
}
