/**
 * Scenario files against hostile content (fast-check; the seed is printed and FC_SEED=<seed>
 * replays it): the shipped scenarios with any value anywhere in them replaced by random JSON
 * (wrong types, huge and negative numbers, NaN-like strings, deep nesting), keys removed or
 * added, and random JSON. parseScenario gives a scenario or SimError SCENARIO_INVALID.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { SimError } from '../../simulations/errors.ts';
import { parseScenario } from '../../simulations/scenario.ts';

const seed = Number(process.env.FC_SEED ?? 20261127);
const dir = new URL('../../simulations/scenarios/', import.meta.url);
const shipped = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as unknown);

type Path = Array<string | number>;
/** Every path to a value inside `v`. */
function paths(v: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

/** `v` with the value at `path` replaced (undefined: removed). */
function replaced(v: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (Array.isArray(v)) return v.map((x, i) => (i === head ? replaced(x, rest, value) : x)).filter((x) => x !== undefined);
  const o = { ...(v as { [k: string]: unknown }) };
  const next = replaced(o[head as string], rest, value);
  if (next === undefined) delete o[head as string];
  else o[head as string] = next;
  return o;
}

function judge(input: unknown): 'ok' | 'invalid' {
  try {
    parseScenario(input as Parameters<typeof parseScenario>[0]);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof SimError, `threw ${String(err)} for ${JSON.stringify(input)?.slice(0, 300)}`);
    assert.equal(err.code, 'SCENARIO_INVALID');
    return 'invalid';
  }
}

describe('simulations/scenario files (fuzz)', () => {
  before(() => console.log(`    fast-check seed ${seed} (replay: FC_SEED=${seed})`));

  it('the shipped scenarios parse', () => {
    assert.ok(shipped.length > 0);
    for (const s of shipped) assert.equal(judge(s), 'ok');
  });

  it('shipped scenarios with values replaced or removed, and random JSON: a scenario or SCENARIO_INVALID', () => {
    const hostile = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.constantFrom(-1, 0, 1e308, -1e308, 2 ** 53, 0.5, 'NaN', '1', '', [], {}, [1], [1, 2, 3], [[0, 0]], null, true, undefined),
    );
    const outcomes = { ok: 0, invalid: 0 };
    const input = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.tuple(fc.constantFrom(...shipped), fc.array(fc.tuple(fc.nat(), hostile), { minLength: 1, maxLength: 3 })).map(([s, edits]) =>
        edits.reduce((v, [at, value]) => {
          const all = paths(v);
          return replaced(v, all[at % all.length]!, value);
        }, s as unknown),
      ),
    );
    fc.assert(fc.property(input, (v) => void outcomes[judge(v)]++), { seed, numRuns: 3000 });
    console.log(`      ${outcomes.ok} parsed, ${outcomes.invalid} refused`);
  });
});
